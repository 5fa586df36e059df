"""The curated dataset in the formats fine-tuning tools read unchanged, each row carrying its
provenance as extra columns (tools ignore columns they do not map):

- alpaca JSONL (instruction/input/output; a dialogue's earlier turns in `history`), as
  LLaMA-Factory's alpaca format and Stanford Alpaca read it;
- ShareGPT JSONL (`conversations` of from/value turns: human/gpt), multi-turn dialogues whole;
- OpenAI chat messages JSONL (`messages` of role/content), as OpenAI fine-tuning, TRL and
  LLaMA-Factory's sharegpt-with-openai-tags read it;
- a Hugging Face DatasetDict saved with save_to_disk;
- dataset_info.json describing the files for LLaMA-Factory, with the column mapping of each;
- optionally a RAFT variant: the question with its evidence and distractor chunks in the input;
- counselling dialogues in the input/target form BianQue and SoulChat train on: one record per
  clinician turn, the dialogue so far (speaker-labelled, in the row's language) as input and that
  turn as target, with its LLaMA-Factory entry (alpaca columns input -> prompt, target -> response);
- optionally chain-of-thought files (alpaca and ShareGPT) of the rows a reasoning model wrote, the
  reasoning before the answer in <think>…</think>, as LLaMA-Factory's thinking templates (qwen3,
  deepseekr1) expect it in the response.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.chat import last_clinician_turn
from ragtune.curate.curation import SPLITS
from ragtune.jsonl import write_jsonl
from ragtune.layout import DataLayout

SYSTEM_PROMPT = "You are a knowledgeable clinical assistant. Answer accurately and concisely."


def provenance(row: dict[str, Any]) -> dict[str, Any]:
    """Columns that trace a row to its source; flat types so every loader infers one schema."""
    return {
        "id": row["qa_id"],
        "task": row.get("task", ""),
        "language": row.get("language", ""),
        "chapter_key": row["chapter_key"],
        "doc_ids": sorted({e["doc_id"] for e in row.get("evidence", [])}),
        "chunk_ids": list(row.get("chunk_ids", [])),
        "section_paths": [" > ".join(e["section_path"]) for e in row.get("evidence", [])],
        "pages": sorted({p for e in row.get("evidence", []) for p in e["pages"]}),
        "supporting_chunk_ids": sorted({s["chunk_id"] for s in row.get("supporting_spans") or []}),
        "judge_score": row.get("judge_score"),
        "groundedness": row.get("groundedness"),
        "expert_decision": (row.get("review") or {}).get("decision", ""),  # accept / edit; "" = not reviewed
        "expert_edited": bool(row.get("expert_edited")),
    }


PROVENANCE_COLUMNS = frozenset(provenance({"qa_id": "", "chapter_key": ""}))


def turns_of(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(user text, assistant text) exchanges: one for a pair, one per patient/clinician exchange for a dialogue."""
    turns = row.get("turns")
    if not turns:
        return [(row["question"], row["answer"])]
    return [(turns[i]["content"], turns[i + 1]["content"]) for i in range(0, len(turns) - 1, 2)]


def to_alpaca(row: dict[str, Any]) -> dict[str, Any]:
    exchanges = turns_of(row)
    (instruction, output), history = exchanges[-1], [list(pair) for pair in exchanges[:-1]]
    return {"instruction": instruction, "input": "", "output": output, "system": SYSTEM_PROMPT, "history": history, **provenance(row)}


def to_sharegpt(row: dict[str, Any]) -> dict[str, Any]:
    conversations = []
    for user, assistant in turns_of(row):
        conversations += [{"from": "human", "value": user}, {"from": "gpt", "value": assistant}]
    return {"conversations": conversations, "system": SYSTEM_PROMPT, **provenance(row)}


def to_messages(row: dict[str, Any]) -> dict[str, Any]:
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for user, assistant in turns_of(row):
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return {"messages": messages, **provenance(row)}


def with_thinking(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its reasoning in front of its (last) answer, as thinking templates train on it."""
    think = f"<think>\n{row['reasoning'].strip()}\n</think>\n\n"
    if row.get("turns"):
        turns = [dict(t) for t in row["turns"]]
        last = last_clinician_turn(turns)
        turns[last]["content"] = think + turns[last]["content"]
        return {**row, "turns": turns}
    return {**row, "answer": think + row["answer"]}


# Speaker labels of the input/target form, as the Chinese counselling corpora write them (BianQue: 病人/医生).
SPEAKERS = {"zh": {"patient": "病人：", "clinician": "医生："}, "en": {"patient": "Patient: ", "clinician": "Clinician: "}}


def to_counselling(row: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per clinician turn of a dialogue row (none for a pair): the earlier turns, each on
    its own labelled line, ending in the clinician's label, as input; the clinician's turn as target."""
    speakers = SPEAKERS.get(row.get("language") or "en", SPEAKERS["en"])
    records, lines = [], []
    for number, turn in enumerate(row.get("turns") or []):
        if turn["role"] == "clinician":
            records.append({"input": "\n".join([*lines, speakers["clinician"]]), "target": turn["content"], **provenance(row),
                            "id": f"{row['qa_id']}#{number}", "qa_id": row["qa_id"], "turn": number})
        lines.append(speakers[turn["role"]] + turn["content"])
    return records


def to_raft(row: dict[str, Any], pool: list[dict[str, Any]], distractors: int, oracle_share: float, seed: int,
            withheld: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """RAFT-style: the question with passages in the input: the row's own evidence (in
    `oracle_share` of rows, decided by a hash so reruns agree) plus distractor chunks that are
    not in its evidence, shuffled; the model learns to answer from the relevant passage. withheld:
    chunk ids that must not appear (for a train row, held-out chunks and their overlapping
    neighbours), neither as evidence nor as distractors."""
    rng = random.Random(int(hashlib.sha256(f"{seed}:{row['qa_id']}".encode()).hexdigest()[:12], 16))
    own = {e["chunk_id"] for e in row.get("evidence", [])}
    others = [c for c in pool if c["chunk_id"] not in own and c["chunk_id"] not in withheld]
    chosen = rng.sample(others, min(distractors, len(others)))
    with_oracle = rng.random() < oracle_share
    evidence = [e for e in row.get("evidence", []) if e["chunk_id"] not in withheld]
    passages = (evidence if with_oracle else []) + chosen
    rng.shuffle(passages)
    context = "\n\n".join(f"<passage id=\"{p['chunk_id']}\">\n{p['text']}\n</passage>" for p in passages)
    instruction, output = turns_of(row)[0]
    return {
        "instruction": instruction, "input": context, "output": output, "system": SYSTEM_PROMPT, "history": [],
        "raft_oracle_included": with_oracle, "raft_passage_ids": [p["chunk_id"] for p in passages], **provenance(row),
    }


def add_dataset_info(out_dir: Path, entries: dict[str, Any]) -> Path:
    """Add LLaMA-Factory entries to out_dir/dataset_info.json, keeping the entries already there."""
    path = out_dir / "dataset_info.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    info.update(entries)
    path.write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


@dataclass
class ExportSettings:
    raft: bool = True  # also write the RAFT variant (evidence + distractor chunks in the input)
    raft_distractors: int = 3
    raft_oracle_share: float = 0.8  # rows whose input holds their own evidence among the distractors
    name: str = "ragtune clinical QA"  # the dataset card's title
    reasoning: bool = False  # also write chain-of-thought files of the rows that carry a reasoning model's thinking
    pt_corpus: bool = True  # also write the continued-pretraining corpus of the chapters' text (train-side text only)


ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"}
SHAREGPT_ENTRY = {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"},
                  "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}
ALPACA_ENTRY = {"formatting": "alpaca", "columns": ALPACA_COLUMNS}


@dataclass(frozen=True)
class RaftSource:
    """What the RAFT variant draws on: the chunk rows distractors come from and, per split, the chunk ids
    its inputs may not show (curation's sealed sets)."""
    pool: list[dict[str, Any]]
    distractors: int = 3
    oracle_share: float = 0.8
    seed: int = 0
    sealed: dict[str, set[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportFormat:
    """One format a trainer can be given: what it is, how a split's rows become its records (None: another
    step writes it), LLaMA-Factory's dataset_info entry for its file, the ExportSettings switch that turns
    it on ("" = always), the splits it has and the step that writes it. `ragtune export` offers each one."""
    name: str
    description: str
    records: Callable[[list[dict[str, Any]], str, "RaftSource | None"], list[dict[str, Any]]] | None = None
    entry: dict[str, Any] | None = None
    switch: str = ""
    splits: tuple[str, ...] = SPLITS
    written_by: str = "dataset_exports"
    empty_file: bool = True  # False: a split without records gets no file (and no dataset_info entry)

    def file_name(self, split: str) -> str:
        return f"{self.name}_{split}.jsonl"


def _thought(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [with_thinking(r) for r in rows if r.get("reasoning")]


def _raft(rows: list[dict[str, Any]], split: str, raft: RaftSource | None) -> list[dict[str, Any]]:
    withheld = raft.sealed.get(split, frozenset())
    return [to_raft(r, raft.pool, raft.distractors, raft.oracle_share, raft.seed, withheld) for r in rows]


def export_path(layout: DataLayout, name: str, split: str) -> Path:
    """Where format `name` of a split lies once its step has run (hf: the Hugging Face folder, all splits)."""
    if name == "hf":
        return layout.hf_dataset
    if name == "dpo":
        return layout.train_preference_pairs
    return layout.exports_dir / EXPORT_FORMATS[name].file_name(split)


# The one table of export formats: dataset_exports writes those with records, `ragtune export` serves all.
EXPORT_FORMATS = {f.name: f for f in (
    ExportFormat("alpaca", "instruction/input/output; a dialogue's earlier turns in history", lambda rows, _, __: [to_alpaca(r) for r in rows],
                 ALPACA_ENTRY),
    ExportFormat("sharegpt", "conversations of human/gpt turns, dialogues whole", lambda rows, _, __: [to_sharegpt(r) for r in rows],
                 SHAREGPT_ENTRY),
    ExportFormat("messages", "OpenAI chat messages (role/content)", lambda rows, _, __: [to_messages(r) for r in rows],
                 {"formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": {
                     "role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "system_tag": "system"}}),
    ExportFormat("counselling", "dialogues as input/target, one record per clinician turn (BianQue, SoulChat)",
                 lambda rows, _, __: [record for r in rows for record in to_counselling(r)],
                 {"formatting": "alpaca", "columns": {"prompt": "input", "response": "target"}}, empty_file=False),
    ExportFormat("alpaca_reasoning", "alpaca with the reasoning model's thinking before the answer",
                 lambda rows, _, __: [to_alpaca(r) for r in _thought(rows)], ALPACA_ENTRY, switch="reasoning"),
    ExportFormat("sharegpt_reasoning", "ShareGPT with the reasoning model's thinking before the answer",
                 lambda rows, _, __: [to_sharegpt(r) for r in _thought(rows)], SHAREGPT_ENTRY, switch="reasoning"),
    ExportFormat("raft", "alpaca with evidence and distractor passages in the input (RAFT)", _raft, ALPACA_ENTRY, switch="raft"),
    ExportFormat("pt", "the continued-pretraining corpus: train-side section passages (pt_train.jsonl)", switch="pt_corpus", splits=("train",)),
    ExportFormat("hf", "a Hugging Face DatasetDict of the messages files (save_to_disk)"),
    ExportFormat("dpo", "train-side DPO preference pairs (prompt/chosen/rejected)", splits=("train",), written_by="preference_pairs"),
)}


def write_exports(out: Path, splits: dict[str, list[dict[str, Any]]], prefix: str = "ragtune",
                  raft_pool: list[dict[str, Any]] | None = None, raft_distractors: int = ExportSettings.raft_distractors,
                  raft_oracle_share: float = ExportSettings.raft_oracle_share, seed: int = 0,
                  sealed: dict[str, set[str]] | None = None, reasoning: bool = False) -> dict[str, Path]:
    """Write every format for every split; returns name -> path. raft_pool (chunk rows) turns the
    RAFT variant on; sealed: split -> chunk ids its RAFT inputs may not show (curation's sealed sets:
    train may show no validation or test text, validation no test text); reasoning: the
    chain-of-thought files, of the rows that have a `reasoning`."""
    import datasets

    datasets.disable_progress_bars()

    out.mkdir(parents=True, exist_ok=True)
    raft = RaftSource(raft_pool, raft_distractors, raft_oracle_share, seed, sealed or {}) if raft_pool is not None else None
    switched_on = {"": True, "raft": raft is not None, "reasoning": reasoning}
    written: dict[str, Path] = {}
    entries: dict[str, Any] = {}
    for split in SPLITS:
        for fmt in EXPORT_FORMATS.values():
            if fmt.records is None or not switched_on[fmt.switch] or split not in fmt.splits:
                continue
            records = fmt.records(splits.get(split, []), split, raft)
            path = out / fmt.file_name(split)
            path.unlink(missing_ok=True)  # a split whose records are gone leaves no stale file
            if records or fmt.empty_file:
                write_jsonl(path, records)
                written[f"{fmt.name}_{split}"] = path
                entries[f"{prefix}_{fmt.name}_{split}"] = {"file_name": path.name, **fmt.entry}
    info = out / "dataset_info.json"
    info.write_text(json.dumps(entries, indent=2, ensure_ascii=False), encoding="utf-8")
    written["dataset_info"] = info
    hf_dir = out / "hf_dataset"
    files = {split: str(written[f"messages_{split}"]) for split in SPLITS if splits.get(split)}
    with tempfile.TemporaryDirectory() as cache:  # keep the user's ~/.cache out of it
        datasets.load_dataset("json", data_files=files, cache_dir=cache).save_to_disk(str(hf_dir))
    written["hf_dataset"] = hf_dir
    return written
