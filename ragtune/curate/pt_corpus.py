"""The continued-pretraining corpus: the cleaned chapter text (running headers and page numbers were
dropped by the parser), one record per section passage with its section path and pages, in
LLaMA-Factory's `pt` format (a `text` column) and as a Hugging Face dataset.

It respects the split like every train file: a block of text is left out when it lies in a chunk
that train may not show (curation's sealed set: validation and test chunks, their overlapping
neighbours, chunks sharing a 13-word window with held-out text) or shares such a window itself.
Where a block is left out the passage ends, so no record joins text across the gap.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.curate.exports import EXPORT_FORMATS, add_dataset_info
from ragtune.curate.leakage import HeldOutQuestions, HeldOutText
from ragtune.index.chunking import render_block
from ragtune.ingest.document import Section
from ragtune.ingest.sources import ChapterBundle
from ragtune.jsonl import write_jsonl

PT_FILE = EXPORT_FORMATS["pt"].file_name("train")  # pt_train.jsonl: the leakage check reads every *_train.jsonl export


@dataclass
class PTCorpus:
    records: list[dict[str, Any]] = field(default_factory=list)
    blocks_kept: int = 0
    blocks_withheld: int = 0  # in a sealed chunk or overlapping held-out text

    def counts(self) -> dict[str, int]:
        return {"passages": len(self.records), "blocks_kept": self.blocks_kept, "blocks_withheld": self.blocks_withheld,
                "characters": sum(len(r["text"]) for r in self.records)}


def _sealed_spans(text: str, section_chunks: list[dict[str, Any]], sealed: set[str]) -> list[tuple[int, int]] | None:
    """Character spans of the section text that sealed chunks cover, located the way the chunker
    placed them (in order, by their opening); None when a sealed chunk cannot be placed."""
    spans, search_from = [], 0
    for chunk in section_chunks:
        start = text.find(chunk["text"][:80], search_from)
        if start < 0:
            if chunk["chunk_id"] in sealed:
                return None
            continue
        search_from = start + 1
        if chunk["chunk_id"] in sealed:
            spans.append((start, start + len(chunk["text"])))
    return spans


PT_METADATA = ("id", "doc_id", "chapter_key", "chapter_title", "section_path", "section", "pages")  # a passage's columns beside its text


def _passage(bundle: ChapterBundle, doc_id: str, section: Section, blocks: list[tuple[str, int]], titled: bool) -> dict[str, Any]:
    text = "\n".join([section.title, *(t for t, _ in blocks)]) if section.title and titled else "\n".join(t for t, _ in blocks)
    return {
        "text": text,
        "id": hashlib.sha256(f"{doc_id}\n{'/'.join(section.section_path)}\n{text}".encode()).hexdigest()[:16],
        "doc_id": doc_id,
        "chapter_key": bundle.chapter_key,
        "chapter_title": bundle.title,
        "section_path": list(section.section_path),
        "section": " > ".join(section.section_path),
        "pages": sorted({page for _, page in blocks if page > 0}),
    }


def pt_corpus(bundles: list[ChapterBundle], chunks: dict[str, dict[str, Any]], sealed: set[str], held_out: HeldOutText,
              questions: HeldOutQuestions | None = None) -> PTCorpus:
    """bundles: the chapters; chunks: chunk id -> chunk row of the index, in book order; sealed: the
    chunk ids train may not show; held_out: the held-out text; questions: the held-out rows' questions,
    which no passage may show (a section titled with one loses its title)."""
    by_section: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for chunk in chunks.values():
        by_section.setdefault((chunk["doc_id"], tuple(chunk["section_path"])), []).append(chunk)
    corpus = PTCorpus()
    for bundle in bundles:
        for doc_id, chapter in bundle.parts:
            for section in chapter.sections:
                rendered = [(render_block(b), b.page) for b in section.blocks if b.text.strip()]
                text = "\n".join(t for t, _ in rendered)
                spans = _sealed_spans(text, by_section.get((doc_id, tuple(section.section_path)), []), sealed)
                runs: list[list[tuple[str, int]]] = [[]]
                offset = 0
                for block_text, page in rendered:
                    start, end = offset, offset + len(block_text)
                    offset = end + 1
                    withheld = spans is None or any(s < end and e > start for s, e in spans) or bool(held_out.sources(block_text))
                    if withheld:
                        corpus.blocks_withheld += 1
                        runs.append([])
                    else:
                        corpus.blocks_kept += 1
                        runs[-1].append((block_text, page))
                # A section with a held-out part loses its title too: a heading such as "What is the difference
                # between a panic attack and panic disorder?" is, word for word, the question a held-out row asks.
                titled = len(runs) == 1 and not (questions and questions.found_in({"title": section.title}))
                corpus.records += [_passage(bundle, doc_id, section, run, titled) for run in runs if run]
    # A window can straddle two kept blocks; such a passage is dropped whole (held-out text joins them).
    corpus.records = [r for r in corpus.records if not held_out.sources(r["text"])]
    return corpus


def pt_dataset_info(prefix: str) -> dict[str, Any]:
    """LLaMA-Factory's entry for the corpus: pretraining reads the `text` column as the prompt."""
    return {f"{prefix}_pt_train": {"file_name": PT_FILE, "columns": {"prompt": "text"}}}


def write_pt_corpus(out: Path, corpus: PTCorpus, prefix: str = "ragtune") -> dict[str, Path]:
    """pt_train.jsonl, its entry added to dataset_info.json (other entries kept) and a Hugging Face
    dataset (hf_pt, one train split) beside the other exports; returns name -> path."""
    import datasets

    datasets.disable_progress_bars()
    path = out / PT_FILE
    write_jsonl(path, corpus.records)
    add_dataset_info(out, pt_dataset_info(prefix))
    hf_dir = out / "hf_pt"
    shutil.rmtree(hf_dir, ignore_errors=True)
    datasets.DatasetDict({"train": datasets.Dataset.from_list(corpus.records)}).save_to_disk(str(hf_dir))
    return {"pt_train": path, "hf_pt": hf_dir}
