"""Parsed documents and per-chapter text, the roots of the graph."""

import json
from pathlib import Path
from typing import Literal, Optional

import dagster as dg
from pydantic import Field

from pipeline_assets.metadata import table
from pipeline_assets.partitions import CHAPTERS, chapter_partitions
from ragtune.ingest.document import Document
from ragtune.ingest.pdf_parser import ParseError
from ragtune.ingest.sources import collect_chapter, parse_all
from resources.grobid import GrobidResource
from resources.storage import DataDirResource

SAMPLE_HANDBOOK = Path(__file__).resolve().parent.parent / "sample_handbook" / "handbook.pdf"


class ParseConfig(dg.Config):
    paths: list[str] = Field(
        default=[str(SAMPLE_HANDBOOK)],
        description="Files (PDF, DOCX, PPTX, EPUB, HTML, GROBID TEI, Markdown, text) or folders of them to parse.",
    )
    password: Optional[str] = Field(default=None, description="Password for encrypted PDFs.")
    parser: Literal["embedded", "grobid"] = Field(
        default="embedded", description="PDFs through the embedded parser or the GROBID server (grobid resource)."
    )
    categories_from: Literal["outline", "folder", "mapping"] = Field(
        default="outline",
        description="Partitions from each book's outline, from folders (inbox/<category>/*.pdf), or from mapping_file.",
    )
    mapping_file: Optional[str] = Field(default=None, description="CSV/TSV with 'file' and 'category' columns; category 'outline' keeps that book's own chapters.")
    ocr_languages: Optional[str] = Field(
        default=None,
        description="Tesseract languages for scanned pages, e.g. 'eng', 'chi_sim', 'eng+chi_sim'. "
        "Unset: the PDF's declared language, else eng+chi_sim.",
    )


def load_documents(storage: DataDirResource) -> list[Document]:
    manifest = storage.layout.parsed_manifest
    if not manifest.exists():
        raise dg.Failure(f"{manifest} is missing; materialize parsed_documents first")
    entries = json.loads(manifest.read_text())["documents"]
    return [Document.load(storage.layout.parsed_document(entry["doc_id"])) for entry in entries]


@dg.asset(group_name="ingest", kinds={"pdf", "python"})
def parsed_documents(
    context: dg.AssetExecutionContext, config: ParseConfig, storage: DataDirResource, grobid: GrobidResource
) -> dg.MaterializeResult:
    """Every input (PDF, scanned PDF through OCR, DOCX, PPTX, EPUB, HTML, GROBID .tei.xml, Markdown, text) parsed into structured JSON: title, chapters, sections,
    paragraphs, list items, tables, pages. Registers one chapter partition per chapter key, and records
    each chapter's content hash so chapter_fanout_sensor reruns only chapters whose text changed."""
    grobid_settings = grobid.settings() if config.parser == "grobid" else None
    try:
        documents, failures = parse_all(
            config.paths, config.password, grobid_settings, config.categories_from, config.mapping_file, config.ocr_languages
        )
    except ParseError as error:
        raise dg.Failure(str(error)) from error
    for failure in failures:
        context.log.error(f"{failure['path']}: {failure['problem']}; {failure['remedy']}")
    if not documents:
        told = "; ".join(f"{f['path']}: {f['problem']}" for f in failures[:5]) or "no files"
        raise dg.Failure(f"no document could be parsed from {', '.join(config.paths)} ({told}{' ...' if len(failures) > 5 else ''})",
                         metadata={"failures": table(failures) if failures else "none"})
    manifest = storage.layout.parsed_manifest
    previous = json.loads(manifest.read_text()).get("chapters", {}) if manifest.exists() else {}
    keys = sorted({c.chapter_key for d in documents for c in d.chapters})
    current = {key: collect_chapter(documents, key).content_sha256() for key in keys}
    changed = [key for key in keys if previous.get(key) != current[key]]
    removed = sorted(set(previous) - set(current))
    entries = []
    for document in documents:
        target = storage.layout.parsed_document(document.doc_id)
        target.write_text(document.to_json(), encoding="utf-8")
        entries.append({"doc_id": document.doc_id, "file": target.name, "source_path": document.source_path})
    storage.layout.write_json(manifest, {"documents": entries, "failures": failures, "chapters": current}, indent=2)
    known = set(context.instance.get_dynamic_partitions(CHAPTERS))
    new_keys = [k for k in keys if k not in known]
    if new_keys:
        context.instance.add_dynamic_partitions(CHAPTERS, new_keys)
    gone = sorted(known - set(keys))
    if gone:
        context.log.warning(f"chapter partitions no longer in any parsed document (kept, not deleted): {gone}")
    return dg.MaterializeResult(
        metadata={
            "documents": table(
                [{"doc_id": d.doc_id, "title": d.title, "parser": d.parser, "pages": d.page_count, "ocr_pages": len(d.ocr_pages),
                  "chapters": len(d.chapters)} for d in documents]
            ),
            "chapter_keys": dg.MetadataValue.json(keys),
            "changed_chapters": dg.MetadataValue.json(changed),
            "removed_chapters": dg.MetadataValue.json(removed),
            "new_partitions": dg.MetadataValue.json(new_keys),
            "partitions_not_in_documents": dg.MetadataValue.json(gone),
            "failures": table(failures) if failures else dg.MetadataValue.text("none"),
            "path": dg.MetadataValue.path(str(manifest)),
        }
    )


@dg.asset_check(asset=parsed_documents, description="Every input document parsed; lists each failure and what to do.")
def every_document_parsed(storage: DataDirResource) -> dg.AssetCheckResult:
    failures = json.loads(storage.layout.parsed_manifest.read_text())["failures"]
    return dg.AssetCheckResult(
        passed=not failures,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "failed_documents": len(failures),
            "failures": table(failures) if failures else dg.MetadataValue.text("none"),
        },
    )


@dg.asset(group_name="ingest", partitions_def=chapter_partitions, deps=[parsed_documents], kinds={"json"})
def chapters(context: dg.AssetExecutionContext, storage: DataDirResource) -> dg.MaterializeResult:
    """One chapter (or category) gathered from every parsed document that contains it.
    Its content hash is the data version, so unchanged chapters leave downstream partitions fresh."""
    key = context.partition_key
    bundle = collect_chapter(load_documents(storage), key)
    if bundle is None:
        raise dg.Failure(f"chapter '{key}' is in no parsed document; re-add its source or delete the partition")
    target = storage.layout.chapter(key)
    bundle.save(target)
    merged = bundle.merged()
    sha = bundle.content_sha256()
    return dg.MaterializeResult(
        data_version=dg.DataVersion(sha),
        metadata={
            "title": bundle.title,
            "documents": dg.MetadataValue.json([doc_id for doc_id, _ in bundle.parts]),
            "pages": dg.MetadataValue.json(merged.pages),
            "sections": table(
                [{"section": " > ".join(s.section_path), "blocks": len(s.blocks), "pages": str(s.pages)} for s in merged.sections]
            ),
            "words": len(merged.text().split()),
            "content_sha256": sha,
            "path": dg.MetadataValue.path(str(target)),
        },
    )
