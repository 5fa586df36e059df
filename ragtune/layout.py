"""Every file one asset writes and another reads, named once: the data folder's layout. Assets hand
each other files, never Python objects, so this is the contract between stages; no path is spelled
anywhere else. Paths built from partition keys or document ids are checked to stay inside the
folder (a key like '../x' is refused before anything is written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ragtune.jsonl import read_jsonl, write_jsonl, write_text_atomic


class DataLayout:
    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()

    def _path(self, *parts: str) -> Path:
        """A path under the data folder whose parent folder exists."""
        target = self.root.joinpath(*parts).resolve()
        if not target.is_relative_to(self.root) or target == self.root:
            raise ValueError(f"refusing to write {'/'.join(parts)!r}: it leads out of the data folder {self.root}; "
                             "partition keys and file names must not contain '..' or absolute paths")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def _folder(self, *parts: str) -> Path:
        folder = self._path(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # ingest
    @property
    def parsed_manifest(self) -> Path:
        return self._path("parsed", "manifest.json")

    def parsed_chapter_keys(self) -> list[str] | None:
        """The chapters of the documents parsed last: the collection as it stands (None before any parse)."""
        manifest = self.read_json(self.parsed_manifest)
        return None if manifest is None else sorted(manifest.get("chapters", {}))

    def gone_from_collection(self, keys: Iterable[str]) -> set[str]:
        """Of these chapter keys, those no document parsed last gives any more (retired; none before any parse)."""
        current = self.parsed_chapter_keys()
        return set() if current is None else set(keys) - set(current)

    def parsed_document(self, doc_id: str) -> Path:
        return self._path("parsed", f"{doc_id}.json")

    def chapter(self, key: str) -> Path:
        return self._path("chapters", f"{key}.json")

    # index
    def chunks(self, key: str) -> Path:
        return self._path("chunks", f"{key}.jsonl")

    def chunk_vectors(self, key: str) -> Path:
        return self._path("chunks", f"{key}.npy")

    def chunk_version(self, key: str) -> Path:
        return self._path("chunks", f"{key}.version")

    @property
    def index_dir(self) -> Path:
        return self._folder("index")

    # llm
    @property
    def llm_cache_dir(self) -> Path:
        return self._folder("cache", "llm")

    # generate
    def evidence_plan(self, key: str) -> Path:
        return self._path("qa", "evidence", f"{key}.json")

    def candidates(self, key: str) -> Path:
        return self._path("qa", "candidates", f"{key}.jsonl")

    def generation_status(self, key: str) -> Path:
        """quota, kept, quota_met, exhausted: written by qa_candidates, read by the quota check."""
        return self._path("qa", "candidates", f"{key}.status.json")

    def generation_statuses(self) -> list[Path]:
        """Every chapter's generation status: what estimates learn keep rates and output lengths from."""
        return sorted(self._path("qa", "candidates").glob("*.status.json"))

    def generation_failures(self, key: str) -> Path:
        return self._path("qa", "failures", f"{key}.jsonl")

    def seeded_candidates(self, key: str) -> Path:
        """Rows grown from the chapter's seed tasks (seed_candidates), filtered with its other candidates."""
        return self._path("qa", "seeded", f"{key}.jsonl")

    def seeded_status(self, key: str) -> Path:
        """Seed tasks read, questions proposed, novel and answered: written by seed_candidates."""
        return self._path("qa", "seeded", f"{key}.status.json")

    def seeded_failures(self, key: str) -> Path:
        return self._path("qa", "seeded", f"{key}.failures.jsonl")

    def seed_tasks(self, key: str) -> Path:
        """The seed tasks seed_candidates read for the chapter: curation keeps every row near one out of the dataset."""
        return self._path("qa", "seeded", f"{key}.seeds.jsonl")

    def all_seed_tasks(self) -> list[Path]:
        return sorted(self._path("qa", "seeded").glob("*.seeds.jsonl"))

    def filtered(self, key: str) -> Path:
        return self._path("qa", "filtered", f"{key}.jsonl")

    def filter_counts(self, key: str) -> Path:
        """Rows removed per rule: written by qa_filtered, read by curation's funnel."""
        return self._path("qa", "filtered", f"{key}.counts.json")

    def rejected(self, key: str) -> Path:
        return self._path("qa", "rejected", f"{key}.jsonl")

    # curate
    def judged(self, key: str) -> Path:
        return self._path("qa", "judged", f"{key}.jsonl")

    def judged_questions(self, key: str) -> Path:
        return self._path("qa", "judged", f"{key}.questions.npy")

    def judge_failures(self, key: str) -> Path:
        return self._path("qa", "judged", f"{key}.failures.jsonl")

    @property
    def dataset_dir(self) -> Path:
        return self._folder("dataset")

    def alpaca_split(self, split: str) -> Path:
        """The trainer's input: dataset/<split>.jsonl in alpaca form."""
        return self._path("dataset", f"{split}.jsonl")

    def dataset_rows(self, split: str) -> Path:
        """Full rows with evidence and provenance."""
        return self._path("dataset", "rows", f"{split}.jsonl")

    def dataset_row_questions(self, split: str) -> Path:
        return self._path("dataset", "rows", f"{split}.questions.npy")

    @property
    def removed(self) -> Path:
        return self._path("dataset", "removed.jsonl")

    @property
    def curation_report(self) -> Path:
        return self._path("dataset", "curation.json")

    @property
    def frozen_splits_manifest(self) -> Path:
        """sha256, qa ids and held-out chunks of the frozen validation and test splits."""
        return self._path("dataset", "splits_frozen.json")

    def frozen_split_rows(self, split: str) -> Path:
        return self._path("dataset", "frozen", f"{split}.jsonl")

    def frozen_split_questions(self, split: str) -> Path:
        return self._path("dataset", "frozen", f"{split}.questions.npy")

    @property
    def exports_dir(self) -> Path:
        return self._folder("exports")

    def raft_export(self, split: str) -> Path:
        """The RAFT variant of a split (exports/raft_<split>.jsonl), which the leakage check reads."""
        return self._path("exports", f"raft_{split}.jsonl")

    def export_files(self, split: str) -> list[Path]:
        """Every JSONL export of a split (exports/<format>_<split>.jsonl), as written."""
        return sorted(self.exports_dir.glob(f"*_{split}.jsonl"))

    @property
    def hf_dataset(self) -> Path:
        return self._path("exports", "hf_dataset")

    @property
    def hf_pt_corpus(self) -> Path:
        """The continued-pretraining corpus as a Hugging Face dataset (exports/pt_train.jsonl is its JSONL)."""
        return self._path("exports", "hf_pt")

    @property
    def dataset_card(self) -> Path:
        return self._path("exports", "README.md")

    @property
    def rows_per_chapter_chart(self) -> Path:
        return self._path("exports", "rows_per_chapter.png")

    # review
    def review_decisions(self, key: str) -> Path:
        """review/decisions/<chapter>.jsonl: the expert decisions, by qa id; written only by review_decisions."""
        return self._path("review", "decisions", f"{key}.jsonl")

    def review_pushed(self, key: str) -> Path:
        """review/pushed/<chapter>.jsonl: every task pushed to the review tool (append-only)."""
        return self._path("review", "pushed", f"{key}.jsonl")

    def read_decisions(self, key: str) -> dict[str, dict[str, Any]]:
        return {d["qa_id"]: d for d in read_jsonl(self.review_decisions(key))}

    # train
    @property
    def adapter_dir(self) -> Path:
        return self._folder("adapter")

    @property
    def adapter_config(self) -> Path:
        """Present once an adapter was saved."""
        return self._path("adapter", "adapter_config.json")

    @property
    def adapter_weights(self) -> Path:
        """The SFT adapter's weights: what the DPO step on top of it is keyed by."""
        return self._path("adapter", "adapter_model.safetensors")

    @property
    def training_report(self) -> Path:
        return self._path("adapter", "training.json")

    @property
    def pt_adapter_dir(self) -> Path:
        """The continued-pretraining LoRA adapter (pt_adapter), trained on exports/pt_train.jsonl."""
        return self._folder("adapter_pt")

    @property
    def pt_adapter_config(self) -> Path:
        return self._path("adapter_pt", "adapter_config.json")

    @property
    def pt_adapter_weights(self) -> Path:
        return self._path("adapter_pt", "adapter_model.safetensors")

    @property
    def train_preference_pairs(self) -> Path:
        """reports/dpo/train_dpo.jsonl: the DPO pairs of train-side questions that dpo_adapter trains on."""
        return self._path("reports", "dpo", "train_dpo.jsonl")

    @property
    def dpo_adapter_dir(self) -> Path:
        """The DPO adapter; its base is the base model with the SFT adapter merged in."""
        return self._folder("adapter_dpo")

    @property
    def dpo_adapter_config(self) -> Path:
        return self._path("adapter_dpo", "adapter_config.json")

    def dpo_work_dir(self, fingerprint: str) -> Path:
        return self._path("cache", "dpo", fingerprint)

    def converted_model(self, name: str) -> Path:
        """The base model dequantized from its GGUF once, reloaded from here."""
        return self._path("models", name)

    def lora_work_dir(self, fingerprint: str) -> Path:
        return self._path("cache", "lora", fingerprint)

    # evaluate
    def report(self, name: str) -> Path:
        """reports/<name>.json: judge_scores, medquad_scores, heldout_loss."""
        return self._path("reports", f"{name}.json")

    def evaluation_failures(self, name: str) -> Path:
        """reports/<name>.failures.jsonl: every failed judge, pairwise or reference call of that report, with its raw output."""
        return self._path("reports", f"{name}.failures.jsonl")

    def chart(self, name: str) -> Path:
        """reports/<name>.png: loss_curve, judge_scores, medquad_scores."""
        return self._path("reports", f"{name}.png")

    @property
    def dpo_dir(self) -> Path:
        """reports/dpo: the train-side preference pairs and the dataset_info.json that offers them to a trainer."""
        return self._folder("reports", "dpo")

    # structured files
    @staticmethod
    def read_json(path: Path, default: Any = None) -> Any:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default

    @staticmethod
    def write_json(path: Path, data: Any, indent: int | None = 1) -> Path:
        write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False))
        return path

    def read_frozen_splits(self) -> tuple[dict[str, Any], dict[str, list[dict]], dict[str, np.ndarray | None]] | None:
        """(manifest, rows per split, question vectors per split or None) of the frozen held-out
        splits, or None before the first freeze."""
        manifest = self.read_json(self.frozen_splits_manifest)
        if manifest is None:
            return None
        rows = {split: read_jsonl(self.frozen_split_rows(split)) for split in manifest}
        vectors = {split: np.load(self.frozen_split_questions(split)) if self.frozen_split_questions(split).exists() else None for split in manifest}
        return manifest, rows, vectors

    def write_frozen_splits(self, manifest: dict[str, Any], rows: dict[str, list[dict]], vectors: dict[str, np.ndarray]) -> None:
        for split in manifest:
            write_jsonl(self.frozen_split_rows(split), rows[split])
            np.save(self.frozen_split_questions(split), vectors[split])
        self.write_json(self.frozen_splits_manifest, manifest)
