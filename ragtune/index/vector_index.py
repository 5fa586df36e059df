"""A FAISS inner-product index over normalised chunk embeddings (cosine similarity), with its chunk rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from ragtune.index.chunking import Chunk


@dataclass
class Hit:
    chunk: Chunk
    score: float


class ChunkIndex:
    """Row i of the FAISS index is chunks[i]; saved as index.faiss + chunks.jsonl in one folder."""

    def __init__(self, index: faiss.Index, chunks: list[Chunk]):
        if index.ntotal != len(chunks):
            raise ValueError(f"index has {index.ntotal} vectors but {len(chunks)} chunk rows")
        self.index, self.chunks = index, chunks

    @classmethod
    def build(cls, chunks: list[Chunk], vectors: np.ndarray) -> "ChunkIndex":
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, chunks)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / "index.faiss"))
        with open(folder / "chunks.jsonl", "w", encoding="utf-8") as handle:
            for chunk in self.chunks:
                handle.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "ChunkIndex":
        index_file = folder / "index.faiss"
        if not index_file.exists():
            raise FileNotFoundError(f"no FAISS index at {index_file}; materialize the faiss_index asset first")
        chunks = [Chunk(**json.loads(line)) for line in open(folder / "chunks.jsonl", encoding="utf-8")]
        return cls(faiss.read_index(str(index_file)), chunks)

    def search(self, query_vector: np.ndarray, k: int) -> list[Hit]:
        k = min(k, len(self.chunks))
        if k == 0:
            return []
        scores, rows = self.index.search(np.asarray(query_vector, dtype=np.float32).reshape(1, -1), k)
        return [Hit(self.chunks[r], float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]
