"""Chunk embeddings per chapter and one FAISS index over the whole collection."""

import hashlib
import json

import dagster as dg
import numpy as np

from pipeline_assets.automation import ON_NEW_CONTENT
from pipeline_assets.config import config_from_settings
from pipeline_assets.ingest import chapters
from pipeline_assets.partitions import CHAPTERS, chapter_partitions
from ragtune.index.chunking import Chunk, ChunkSettings, chunk_chapter
from ragtune.index.vector_index import ChunkIndex
from ragtune.ingest.sources import ChapterBundle
from resources.embedder import EmbedderResource
from resources.settings import to_settings
from resources.storage import DataDirResource

ChunkConfig = config_from_settings("ChunkConfig", ChunkSettings, "Chunk size and overlap in embedder tokens.")


@dg.asset(
    group_name="index",
    partitions_def=chapter_partitions,
    deps=[chapters],
    kinds={"sentence-transformers"},
    automation_condition=ON_NEW_CONTENT,
)
def chapter_chunks(
    context: dg.AssetExecutionContext, config: ChunkConfig, storage: DataDirResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """Retrieval chunks of one chapter (doc id, chapter key, section path, pages) and their embeddings."""
    key = context.partition_key
    source = storage.layout.chapter(key)
    if not source.exists():
        raise dg.Failure(f"{source} is missing; materialize chapters for partition '{key}' first")
    bundle = ChapterBundle.load(source)
    model = embedder.embedder()
    chunks: list[Chunk] = []
    for doc_id, chapter in bundle.parts:
        chunks.extend(chunk_chapter(chapter, doc_id, model.tokenize, to_settings(ChunkSettings, config)))
    vectors = model.encode([c.text for c in chunks])
    rows_path = storage.layout.chunks(key)
    with open(rows_path, "w", encoding="utf-8") as handle:
        for chunk in chunks:
            handle.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
    np.save(storage.layout.chunk_vectors(key), vectors)
    # Data version: every chunk row (text, titles, pages) and the embedding model; same content, same version.
    rows = json.dumps([model.name, [c.to_dict() for c in chunks]], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(rows.encode()).hexdigest()
    storage.layout.chunk_version(key).write_text(digest)
    lengths = [len(model.tokenize(c.text)) for c in chunks]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(digest),
        metadata={
            "chunks": len(chunks),
            "mean_tokens": round(sum(lengths) / max(1, len(lengths)), 1),
            "embedding_model": model.name,
            "dimensions": int(vectors.shape[1]) if len(vectors) else 0,
            "path": dg.MetadataValue.path(str(rows_path)),
        },
    )


@dg.asset(
    group_name="index",
    deps=[dg.AssetDep(chapter_chunks, partition_mapping=dg.AllPartitionMapping())],
    kinds={"faiss"},
    automation_condition=ON_NEW_CONTENT,
)
def faiss_index(context: dg.AssetExecutionContext, storage: DataDirResource) -> dg.MaterializeResult:
    """A FAISS inner-product index over the chunk embeddings of every chapter of the collection as last parsed
    (cosine on normalised vectors). A partition whose documents are gone (a retired chapter, or one another data
    folder made under the same Dagster instance) is left out: retrieval never returns its chunks."""
    partitions = sorted(context.instance.get_dynamic_partitions(CHAPTERS))
    left_out = storage.layout.gone_from_collection(partitions)
    keys = [k for k in partitions if k not in left_out]
    missing = [k for k in keys if not storage.layout.chunk_version(k).exists()]
    if missing:
        raise dg.Failure(f"chapter_chunks not materialized for {missing}; materialize those partitions first")
    chunks: list[Chunk] = []
    vectors = []
    versions = {key: storage.layout.chunk_version(key).read_text() for key in keys}  # the index's content
    for key in keys:
        chunks.extend(Chunk(**json.loads(line)) for line in open(storage.layout.chunks(key), encoding="utf-8"))
        vectors.append(np.load(storage.layout.chunk_vectors(key)))
    if not chunks:
        raise dg.Failure("no chunks to index; parse at least one document with text")
    index = ChunkIndex.build(chunks, np.concatenate(vectors))
    folder = storage.layout.index_dir
    index.save(folder)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()),
        metadata={
            "vectors": index.index.ntotal,
            "dimensions": index.index.d,
            "chapters": dg.MetadataValue.json(keys),
            "left_out": dg.MetadataValue.json(sorted(left_out)),
            "path": dg.MetadataValue.path(str(folder)),
        }
    )
