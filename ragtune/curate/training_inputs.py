"""Every file a training step reads or an export offers a trainer (SFT, RAFT, PT, DPO), and what none of
them may show: held-out text and chunks (split_leaks) and held-out questions (held_out_questions_in_training).
What counts as held-out text or a held-out question is leakage.py's; this module applies it to the files.

The leakage check of the dataset compares text windows and chunk ids; a question is often shorter
than a window and a preference pair names no chunk, so a test question pasted into a DPO prompt
or a PT passage would pass it. This check compares the questions themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragtune.curate.curation import HELD_OUT, held_out_chunk_ids, held_out_text, own_text, shown_chunks
from ragtune.curate.exports import PROVENANCE_COLUMNS
from ragtune.curate.leakage import HeldOutQuestions, HeldOutText
from ragtune.curate.pt_corpus import PT_METADATA
from ragtune.jsonl import read_jsonl
from ragtune.layout import DataLayout


def _dataset_info_files(folder: Path) -> list[Path]:
    """The files a LLaMA-Factory dataset_info.json in folder names (a trainer pointed there may read any)."""
    info = folder / "dataset_info.json"
    if not info.exists():
        return []
    return [folder / entry["file_name"] for entry in json.loads(info.read_text(encoding="utf-8")).values() if "file_name" in entry]


SCOPES = ("dataset", "exports", "preferences")


def split_files(layout: DataLayout, split: str, scopes: tuple[str, ...] = SCOPES) -> list[Path]:
    """The JSONL files a trainer is given for a split that exist, by who writes them: the alpaca split
    (dataset), every *_<split> export (exports: alpaca, ShareGPT, messages, RAFT, counselling and, for
    train, the PT corpus) and, for train, the DPO pairs with every file the DPO folder's
    dataset_info.json offers (preferences)."""
    candidates = {
        "dataset": [layout.alpaca_split(split)],
        "exports": layout.export_files(split),
        "preferences": [layout.train_preference_pairs, *_dataset_info_files(layout.dpo_dir)] if split == "train" else [],
    }
    return [path for path in dict.fromkeys(p for scope in scopes for p in candidates[scope]) if path.exists()]


def split_records(layout: DataLayout, split: str, scopes: tuple[str, ...] = SCOPES) -> Iterator[tuple[str, dict[str, Any]]]:
    """(file name relative to the data folder, record) of every file of split_files, then the Hugging
    Face copies (exports): the dataset's split and, for train, the PT corpus."""
    for path in split_files(layout, split, scopes):
        name = str(path.relative_to(layout.root))
        for record in read_jsonl(path):
            yield name, record
    if "exports" not in scopes:
        return
    for folder, part in ((layout.hf_dataset, split), (layout.hf_pt_corpus, "train" if split == "train" else None)):
        if part and folder.exists():
            import datasets

            stored = datasets.load_from_disk(str(folder))
            if part in stored:
                name = f"{folder.relative_to(layout.root)}[{part}]"
                for record in stored[part]:
                    yield name, record


# Where a record came from, not what a trainer reads: a section path names a heading, and a heading may be
# word for word a held-out row's question (NIMH's "What is ...?" sections) without its answer.
METADATA_COLUMNS = PROVENANCE_COLUMNS | frozenset(PT_METADATA)


def trained_text(record: dict[str, Any]) -> dict[str, Any]:
    """The record without its provenance columns: what an SFT, PT or DPO trainer reads."""
    return {key: value for key, value in record.items() if key not in METADATA_COLUMNS}


def held_out_questions(layout: DataLayout) -> HeldOutQuestions | None:
    """The validation and test questions, as frozen and as the dataset shows them now (a reviewer may
    have edited one); None before the splits are frozen."""
    stored = layout.read_frozen_splits()
    if stored is None:
        return None
    frozen = stored[1]
    return HeldOutQuestions.of(r for split in HELD_OUT for r in frozen.get(split, []) + read_jsonl(layout.dataset_rows(split)))


def held_out_questions_in_training(layout: DataLayout, scopes: tuple[str, ...] = SCOPES) -> dict[str, list[str]]:
    """"<file>" -> ["<record id>: <held-out qa id>", ...] for every training record of the scopes that
    shows a validation or test question; empty when none does (or before the splits are frozen)."""
    questions = held_out_questions(layout)
    if questions is None:
        return {}
    found: dict[str, list[str]] = {}
    for name, record in split_records(layout, "train", scopes):
        for qa_id in sorted(questions.found_in(trained_text(record))):
            found.setdefault(name, []).append(f"{record.get('id', record.get('qa_id', '?'))}: {qa_id}")
    return found


def held_out_of(layout: DataLayout, chunks: dict[str, dict], against: tuple[str, ...]) -> HeldOutText:
    """The text of the frozen splits named in `against`: their chunks as indexed now and as their rows recorded them."""
    manifest, frozen_rows, _ = layout.read_frozen_splits()
    rows = [r for name in against for r in frozen_rows[name]]
    return held_out_text(held_out_chunk_ids((c for name in against for c in manifest[name]["held_out_chunks"]), rows), chunks, rows)


def split_leaks(layout: DataLayout, chunks: dict[str, dict], scope: str) -> dict[str, list[str]]:
    """Where a split shows what it may not: train anything of validation or test, validation anything
    of test. scope "dataset": the dataset's rows and alpaca splits; "exports": every export format
    (RAFT included), the Hugging Face copies and the PT corpus. A record leaks when it names a held-out
    or sealed chunk or shares a 13-word window with held-out text. chunks: the indexed chunks by id.
    Returns "<file>" -> record ids."""
    if layout.read_frozen_splits() is None:
        return {layout.frozen_splits_manifest.name: ["missing: materialize instruction_dataset"]}
    guarded = {"train": HELD_OUT, "validation": ("test",)}
    leaks: dict[str, list[str]] = {}
    for split, against in guarded.items():
        text = held_out_of(layout, chunks, against)
        sealed = text.sealed(chunks)
        if scope == "dataset":  # what a row says, its evidence, its chunks (the judge's notes are not training text)
            for row in read_jsonl(layout.dataset_rows(split)):
                if shown_chunks(row) & sealed or any(text.sources(t) for t in own_text(row) + [e["text"] for e in row.get("evidence", [])]):
                    leaks.setdefault(str(layout.dataset_rows(split).relative_to(layout.root)), []).append(row["qa_id"])
        for name, record in split_records(layout, split, (scope,)):  # every string in a record is shown to a trainer
            named = {c for field in ("chunk_ids", "supporting_chunk_ids", "raft_passage_ids") for c in record.get(field) or []}
            if named & sealed or text.leaks_in(record):
                leaks.setdefault(name, []).append(record.get("id", "?"))
    return leaks
