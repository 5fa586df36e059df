"""From judged chapters to the dataset: cross-chapter dedup, the judge and groundedness thresholds,
and a leak-free three-way split (train / validation / test) whose held-out splits are frozen by hash.

The split is drawn by chunks: a share of the chunks rows were asked about (a row's first evidence
chunk) is held out for test, another for validation; their rows are those splits. Validation drives
early stopping and the choice of epoch; test is seen by neither training nor selection and is what
heldout_loss and judge_scores report. Leak-free means no train row shows held-out text anywhere
(leakage.py: held-out chunks and their overlapping neighbours are sealed; a train row asked about or
answering from a sealed chunk is dropped, sealed chunks leave its evidence; its question and answer
share no 13-word window with held-out text), the same holds for validation against test, and no
train question is a near duplicate of a held-out question by any dedup stage. The first split
freezes the held-out rows and chunks; later runs reuse them unchanged (checked against their hash).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from ragtune.curate.dedup import DedupSettings, Verifier, deduplicate, near_duplicate_pairs
from ragtune.curate.leakage import HeldOutQuestions, HeldOutText
from ragtune.generate.self_instruct import near_seed
from ragtune.review.decisions import agreement, apply_decisions, is_stale, protected
from ragtune.tasks import TASKS, task_style

FUNNEL = ("generated", "valid", "deduplicated", "judged", "kept")
SPLITS = ("train", "validation", "test")
HELD_OUT = ("validation", "test")


@dataclass
class CurationSettings:
    min_judge_score: int = 7  # rows the judge scores lower are dropped
    # Scores of a judge marked weak (the embedded 135M model) stay on the rows but do not filter:
    # it scores almost everything alike. The groundedness threshold filters either way.
    trust_weak_judge: bool = False
    min_groundedness: float = 0.6  # rows whose deterministic groundedness is lower are dropped, whatever the judge said
    test_fraction: float = 0.15  # share of the question chunks held out for the test split (at least one)
    validation_fraction: float = 0.1  # share held out for validation: early stopping, epoch choice (at least one)
    held_out_min_rows: int = 10  # a chapter with this many rows gets at least one validation and one test chunk of its own
    seed: int = 0
    # Task styles whose rows stay out of every split (each in removed.jsonl as "task_excluded"): a style a
    # team does not want to train on, kept generated and cached so that dropping it costs no LLM call.
    exclude_tasks: list[str] = field(default_factory=list)

    def __post_init__(self):
        unknown = [task for task in self.exclude_tasks if task not in TASKS]
        if unknown:
            raise ValueError(f"exclude_tasks: unknown task(s) {unknown}; tasks are {', '.join(TASKS)}")


@dataclass
class FrozenSplit:
    """One held-out split: its chunks and rows, frozen by a hash."""
    name: str
    held_out_chunks: list[str]
    rows: list[dict[str, Any]]
    sha256: str
    vectors: np.ndarray | None = None  # the rows' question embeddings, for the semantic leakage test

    @staticmethod
    def digest(rows: list[dict[str, Any]], held_out_chunks: list[str]) -> str:
        payload = [[r["qa_id"], r["question"], r["answer"]] for r in rows] + [sorted(held_out_chunks)]
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()

    def manifest(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "rows": len(self.rows), "qa_ids": [r["qa_id"] for r in self.rows],
                "held_out_chunks": self.held_out_chunks}

    @classmethod
    def load(cls, name: str, manifest: dict[str, Any], rows: list[dict[str, Any]], vectors: np.ndarray | None = None) -> "FrozenSplit":
        frozen = cls(name, manifest["held_out_chunks"], rows, manifest["sha256"], vectors)
        if cls.digest(rows, frozen.held_out_chunks) != frozen.sha256 or [r["qa_id"] for r in rows] != manifest["qa_ids"]:
            raise ValueError(f"the frozen {name} split does not match its recorded sha256; it was edited. Restore it, "
                             "or set refreeze_splits to draw new splits (scores will no longer compare with earlier runs)")
        return frozen


Frozen = dict[str, FrozenSplit]  # validation, test


def load_frozen(manifest: dict[str, Any], rows: dict[str, list[dict]], vectors: dict[str, np.ndarray | None]) -> Frozen:
    return {name: FrozenSplit.load(name, manifest[name], rows[name], vectors.get(name)) for name in HELD_OUT}


@dataclass
class Curated:
    splits: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {name: [] for name in SPLITS})
    removed: list[dict[str, Any]] = field(default_factory=list)  # every row not kept, with its reason
    dedup_counts: list[dict[str, Any]] = field(default_factory=list)  # per chapter and stage
    funnel: list[dict[str, Any]] = field(default_factory=list)  # per chapter: generated .. kept
    frozen: Frozen = field(default_factory=dict)
    newly_frozen: bool = False
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # question embeddings of each split, in order
    sealed: dict[str, set[str]] = field(default_factory=dict)  # train, validation: chunks that split may not show
    review: dict[str, Any] = field(default_factory=dict)  # reviewed rows and the gate's agreement with the reviewers
    retired: dict[str, dict[str, Any]] = field(default_factory=dict)  # chapter key -> why, and how many rows left with it

    @property
    def train(self) -> list[dict[str, Any]]:
        return self.splits["train"]

    @property
    def held_out_rows(self) -> list[dict[str, Any]]:
        return [r for name in HELD_OUT for r in self.splits[name]]


RETIRED = "retired"
TASK_EXCLUDED = "task_excluded"
SEED_COPY = "dedup:seed"
RETIRED_WHY = "no document of the collection gives this chapter any more (its source was removed or renamed); add it back to bring its rows back"


def _retire(rows: list[dict[str, Any]], retired: dict[str, str], exclude_tasks: Iterable[str] = ()) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows, removed): the rows of chapters that left the collection and of excluded task styles, removed
    with their reason."""
    excluded = set(exclude_tasks)
    out = [r["chapter_key"] in retired or task_style(r.get("task")).name in excluded for r in rows]
    gone = [{**r, "removed_by": RETIRED, "retired_because": retired[r["chapter_key"]]} if r["chapter_key"] in retired
            else {**r, "removed_by": TASK_EXCLUDED} for r, leaves in zip(rows, out) if leaves]
    return [r for r, leaves in zip(rows, out) if not leaves], gone


def _seed_copies(rows: list[dict[str, Any]], seeds: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows, removed): rows whose question is a user's seed task or near one (ragtune.generate.self_instruct
    .near_seed) leave the dataset: a seed is the user's own example, never a held-out question."""
    copied = [near_seed(r["question"], seeds) if seeds else None for r in rows]
    gone = [{**r, "removed_by": SEED_COPY, "seed": seed} for r, seed in zip(rows, copied) if seed]
    return [r for r, seed in zip(rows, copied) if not seed], gone


def priority(row: dict[str, Any]) -> tuple:
    """Best first, so that of two duplicates the reviewed, better-judged, better-grounded one stays."""
    return (not protected(row), -(row.get("judge_score") or 0), -row.get("groundedness", 0.0), row["chapter_key"], row["qa_id"])


def gate_failure(row: dict[str, Any], settings: CurationSettings) -> str | None:
    """The threshold a row fails ("judge", "groundedness"), or None when it passes. A weak judge's
    score counts only when trusted."""
    judge_counts = settings.trust_weak_judge or not row.get("judge_weak")
    if judge_counts and (row.get("judge_score") is None or row["judge_score"] < settings.min_judge_score):
        return "judge"
    if row.get("groundedness", 0.0) < settings.min_groundedness:
        return "groundedness"
    return None


def chunk_bucket(chunk_id: str, seed: int) -> float:
    return int(hashlib.sha256(f"{seed}:{chunk_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def touched_chunks(row: dict[str, Any]) -> set[str]:
    """The chunks a row is about or answers from: its first evidence chunk and its supporting spans."""
    chunks = {span["chunk_id"] for span in row.get("supporting_spans") or []}
    if row.get("chunk_ids"):
        chunks.add(row["chunk_ids"][0])
    return chunks


def shown_chunks(row: dict[str, Any]) -> set[str]:
    """Every chunk a row carries: its evidence list and supporting spans."""
    return touched_chunks(row) | set(row.get("chunk_ids") or []) | {e["chunk_id"] for e in row.get("evidence") or []}


def refresh_provenance(row: dict[str, Any], chunks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The row with each evidence passage's doc id and pages as the index has them now. A chunk id
    is a hash of its text and section path, so the same id is the same passage; only where it sits
    can have moved."""
    evidence = [{**e, **{k: chunks[e["chunk_id"]][k] for k in ("doc_id", "pages")}} if e["chunk_id"] in chunks else e
                for e in row.get("evidence") or []]
    return {**row, "evidence": evidence}


def own_text(row: dict[str, Any]) -> list[str]:
    """What a row says itself: question, answer, dialogue turns."""
    return [row["question"], row["answer"], *(t["content"] for t in row.get("turns") or [])]


def held_out_chunk_ids(drawn: Iterable[str], rows: list[dict[str, Any]]) -> set[str]:
    """The chunks a held-out split keeps from training: those drawn for it and every chunk its rows'
    answers are cut from (a dialogue's later turn, an answer joining a second passage), whose text
    would otherwise train beside the question that asks for it."""
    return set(drawn) | {span["chunk_id"] for row in rows for span in row.get("supporting_spans") or []}


def held_out_text(held_out: set[str], chunks: dict[str, dict[str, Any]], frozen_rows: list[dict[str, Any]]) -> HeldOutText:
    """The held-out chunks' text as the index has it now and as the frozen rows' evidence recorded it
    (a chunk edited since the freeze counts in both versions)."""
    passages = [(c, chunks[c]["text"]) for c in held_out if c in chunks]
    passages += [(e["chunk_id"], e["text"]) for r in frozen_rows for e in r.get("evidence") or [] if e["chunk_id"] in held_out]
    return HeldOutText.of(held_out, passages)


def seal(rows: list[dict[str, Any]], text: HeldOutText, sealed: set[str], against: str) -> tuple[list[dict], list[dict]]:
    """(kept, removed) of rows that must not show held-out text: a row about or answering from a
    sealed chunk, or whose own words overlap held-out text, is removed; sealed chunks leave the
    evidence of the others (recorded in evidence_withheld)."""
    kept, removed = [], []
    for row in rows:
        if touched_chunks(row) & text.chunk_ids:
            removed.append({**row, "removed_by": f"split:{against}_chunk"})
        elif touched_chunks(row) & sealed or any(text.sources(t) for t in own_text(row)):
            removed.append({**row, "removed_by": f"split:overlaps_{against}_text"})
        else:
            withheld = sorted(shown_chunks(row) & sealed)
            if withheld:
                row = {**row, "evidence": [e for e in row.get("evidence", []) if e["chunk_id"] not in sealed],
                       "chunk_ids": [c for c in row.get("chunk_ids", []) if c not in sealed], "evidence_withheld": withheld}
            kept.append(row)
    return kept, removed


def curate(
    judged: dict[str, list[dict[str, Any]]],
    vectors: dict[str, np.ndarray],
    chapter_counts: dict[str, dict[str, int]],
    settings: CurationSettings,
    dedup_settings: DedupSettings,
    chunks: dict[str, dict[str, Any]],
    frozen: Frozen | None = None,
    decisions: dict[str, dict[str, Any]] | None = None,
    retired: dict[str, str] | None = None,
    verifier: Verifier | None = None,
    answer_vectors: dict[str, np.ndarray] | None = None,
    seeds: list[str] | None = None,
) -> Curated:
    """judged: chapter key -> judged rows (each with judge_score and groundedness); vectors: the
    same rows' question embeddings; chapter_counts: chapter key -> {generated, valid} from the
    per-chapter filter; chunks: chunk id -> chunk row of every indexed chunk. frozen: the
    validation and test splits of an earlier run, reused as they are (their evidence's pages and
    doc ids refreshed from the index: a page shift moves them, and the hash does not cover them).
    decisions: qa id -> expert review decision (ragtune.review.decisions), applied to new and
    frozen rows alike: a frozen row a reviewer rejected leaves its split, an edited one shows the
    edit; the frozen record itself is not changed. retired: chapter key -> why it left the collection
    (its source document was removed): its rows, new and frozen, leave every split as a rejected row
    does, each in `removed` with removed_by "retired", and its held-out chunks stay sealed. verifier and
    answer_vectors (qa id -> answer embedding): dedup's model verifier (ragtune.curate.dedup.deduplicate). seeds:
    the instructions of the user's seed tasks (self-instruct); a row, new or frozen, that asks one leaves every
    split (removed_by "dedup:seed"), its held-out chunks still sealed."""
    decisions, retired, seeds = decisions or {}, retired or {}, seeds or []
    for split in (frozen or {}).values():
        split.rows = [refresh_provenance(r, chunks) for r in split.rows]
    rows = [row for key in sorted(judged) for row in judged[key]]
    row_vectors = {row["qa_id"]: vec for key in sorted(judged) for row, vec in zip(judged[key], vectors[key])}
    for split in (frozen or {}).values():
        if split.vectors is not None:
            row_vectors.update({row["qa_id"]: vec for row, vec in zip(split.rows, split.vectors)})
    frozen_ids = {r["qa_id"] for split in (frozen or {}).values() for r in split.rows}
    fresh = [r for r in rows if r["qa_id"] not in frozen_ids]
    reviewed = fresh + [r for split in (frozen or {}).values() for r in split.rows]
    verdicts = [(gate_failure(r, settings) is None, decisions[r["qa_id"]]["decision"]) for r in reviewed
                if r["qa_id"] in decisions and not is_stale(decisions[r["qa_id"]], r)]
    fresh, rejected = apply_decisions(fresh, decisions)
    fresh, gone = _retire(fresh, retired, settings.exclude_tasks)
    fresh, copies = _seed_copies(fresh, seeds)
    rows = sorted(fresh, key=priority)
    dim = next(iter(row_vectors.values())).shape[0] if row_vectors else 1
    answers = _stack([answer_vectors[r["qa_id"]] for r in rows], dim) if verifier is not None and answer_vectors is not None else None
    deduped = deduplicate(rows, _stack([row_vectors[r["qa_id"]] for r in rows], dim), dedup_settings, verifier, answers)
    result = Curated(removed=rejected + gone + copies + [{**r, "removed_by": f"dedup:{r['dedup_stage']}"} for r in deduped.removed],
                     dedup_counts=deduped.counts_table())

    passing = []
    for row in deduped.kept:
        failed = None if protected(row) else gate_failure(row, settings)
        if failed:
            result.removed.append({**row, "removed_by": failed})
        else:
            passing.append(row)

    if frozen is None:
        frozen, removed = _freeze(passing, settings, chunks)
        result.removed += removed
        result.newly_frozen = True
    result.frozen = frozen
    held_rows = [r for name in HELD_OUT for r in frozen[name].rows]  # in the order of held_vectors below
    taken = {r["qa_id"] for r in result.removed + held_rows}
    held = held_out_chunk_ids((c for name in HELD_OUT for c in frozen[name].held_out_chunks), held_rows)
    text = held_out_text(held, chunks, held_rows)
    test = frozen["test"]
    result.sealed = {"train": text.sealed(chunks),
                     "validation": held_out_text(held_out_chunk_ids(test.held_out_chunks, test.rows), chunks, test.rows).sealed(chunks)}
    candidates, removed = seal([r for r in passing if r["qa_id"] not in taken], text, result.sealed["train"], "held_out")
    result.removed += removed
    for name in HELD_OUT:
        frozen[name].vectors = _stack([row_vectors.get(r["qa_id"], np.zeros(dim, np.float32)) for r in frozen[name].rows], dim)
        shown, out = apply_decisions(frozen[name].rows, decisions)
        shown, gone_held = _retire(shown, retired, settings.exclude_tasks)
        shown, copies_held = _seed_copies(shown, seeds)
        gone += gone_held
        result.removed += out + gone_held + copies_held
        result.splits[name] = shown
        position = {r["qa_id"]: i for i, r in enumerate(frozen[name].rows)}
        result.vectors[name] = _stack([frozen[name].vectors[position[r["qa_id"]]] for r in shown], dim)
    held_vectors = np.concatenate([frozen[name].vectors for name in HELD_OUT])  # a rejected held-out row stays held out
    train_vectors = _stack([row_vectors[r["qa_id"]] for r in candidates], dim)
    leaks = {right for _, right, _ in near_duplicate_pairs(held_rows, candidates, dedup_settings, held_vectors, train_vectors)}
    # A held-out dialogue's later turn may ask a train row's question word for word (dialogues reuse the
    # chapter's questions): the row would train on held-out text the question-level dedup never compared.
    held_questions = HeldOutQuestions.of(held_rows)
    for row in candidates:
        if row["qa_id"] in leaks:
            result.removed.append({**row, "removed_by": "split:near_duplicate_of_held_out"})
        elif held_questions.found_in({"own_text": own_text(row)}):
            result.removed.append({**row, "removed_by": "split:asks_a_held_out_question"})
        else:
            result.train.append(row)
    result.vectors["train"] = _stack([row_vectors[r["qa_id"]] for r in result.train], dim)
    current = {k: v for k, v in judged.items() if k not in retired}
    result.funnel = _funnel(current, {k: v for k, v in chapter_counts.items() if k not in retired}, deduped.kept, passing, result)
    result.review = review_summary(decisions, reviewed, verdicts, result)
    result.retired = {key: {"why": why, "rows_removed": sum(r["chapter_key"] == key for r in gone)} for key, why in sorted(retired.items())}
    return result


def review_summary(decisions: dict[str, dict], rows: list[dict], verdicts: list[tuple[bool, str]], result: Curated) -> dict[str, Any]:
    """Reviewed rows by decision, stale decisions (evidence changed: pushed again), edited rows kept,
    and the gate's agreement with the reviewers."""
    current = [r for r in rows if r["qa_id"] in decisions]
    stale = sorted(r["qa_id"] for r in current if is_stale(decisions[r["qa_id"]], r))
    kept = [r for split in result.splits.values() for r in split]
    return {"decisions": len(decisions), "rows_with_decision": len(current), "stale": len(stale), "stale_qa_ids": stale,
            "expert_edited_kept": sum(bool(r.get("expert_edited")) for r in kept), "protected_kept": sum(protected(r) for r in kept),
            "gate_vs_reviewers": agreement(verdicts)}


def _stack(vectors: list[np.ndarray], dim: int) -> np.ndarray:
    return np.stack(vectors) if vectors else np.zeros((0, dim), np.float32)


def _freeze(rows: list[dict[str, Any]], settings: CurationSettings, chunks: dict[str, dict[str, Any]]) -> tuple[Frozen, list[dict]]:
    """Hold out chunks that rows were asked about, per chapter: test first, then validation among the
    chunks that do not overlap a test chunk or a chunk a test answer is cut from, and keep a row once
    that text is sealed away. A chapter
    with at least held_out_min_rows rows gets at least one chunk of each (so every such chapter is
    evaluated), and every chapter keeps one chunk for train; the whole dataset gets at least one of
    each when it has three chunks or more. Returns the frozen splits and the validation rows that
    showed test text."""
    def rows_of(chunks: list[str]) -> list[dict]:
        chosen = set(chunks)
        return sorted((r for r in rows if r.get("chunk_ids") and r["chunk_ids"][0] in chosen), key=lambda r: r["qa_id"])

    def bucket(chunk_id: str) -> float:
        return chunk_bucket(chunk_id, settings.seed)

    by_chapter: dict[str, list[str]] = {}
    size: Counter = Counter()
    for row in rows:
        if row.get("chunk_ids"):
            size[row["chapter_key"]] += 1
            by_chapter.setdefault(row["chapter_key"], []).append(row["chunk_ids"][0])
    seeds = {key: sorted(set(found), key=lambda c: (bucket(c), c)) for key, found in sorted(by_chapter.items())}
    large = {key for key in seeds if size[key] >= settings.held_out_min_rows}
    everything = sorted({c for found in seeds.values() for c in found}, key=lambda c: (bucket(c), c))

    def sealed_by(drawn: list[str]) -> set[str]:
        """What holding these chunks out seals: them, every chunk their rows' answers are cut from, and the
        chunks whose text overlaps any of those (held_out_text), as curate() seals them."""
        return held_out_text(held_out_chunk_ids(drawn, rows_of(drawn)), chunks, []).sealed(chunks)

    def draw_leaving(candidates: list[str], below: float, force: bool, keep: dict[str, tuple[list[str], int]], before: set[str]) -> list[str]:
        """The candidates (bucket order) whose bucket lies below `below`, or with force and none of those fits, the
        first that fits; each only while every group of chunks in `keep` (a chapter: its chunks, how many to keep)
        keeps that many outside `before` and what the drawn ones seal, or, where it had fewer, loses none; and every
        task style with a row left for train keeps one in each language, unless a forced draw has no other way.
        A multi-hop row seals its other chapter's chunk (its answer is cut from it), so every chapter counts, not
        only the drawn chunk's: an OCD multi-hop row drawn for validation sealed the anxiety chapter's chunk of the
        run's only dialogue (the e2e run with multi-hop on); counting only the drawn chunks, test once took two of
        three, its dialogue's answers sealed the third, and validation had nothing left (the stop test's anxiety
        run, CI of stop 46). Sealing is a union over chunks, so each trial adds one chunk's seal to what is sealed."""
        styles = styles_left(before)

        def fits(sealed: set[str], keep_styles: bool = True) -> bool:
            return (all(sum(c not in sealed for c in found) >= min(wanted, sum(c not in before for c in found)) for found, wanted in keep.values())
                    and (not keep_styles or styles_left(sealed) >= styles))

        chosen: list[str] = []
        sealed = set(before)
        for chunk in (c for c in candidates if bucket(c) < below):
            trial = sealed | sealed_by([chunk])
            if fits(trial):
                chosen.append(chunk)
                sealed = trial
        if chosen or not force:
            return chosen
        # Forced (none below fits), the pick that seals fewest rows of other chapters comes first; where every pick
        # would seal some style's last train row (a small chapter whose styles have a row each: the stop test's
        # anxiety run), a split with rows comes before a style in train.
        ordered = [(c, before | sealed_by([c])) for c in sorted(candidates, key=lambda c: (sealed_elsewhere(c), bucket(c), c))]
        return next(([c] for c, trial in ordered if fits(trial)), None) or next(([c] for c, trial in ordered if fits(trial, keep_styles=False)), [])

    def styles_left(sealed: set[str]) -> set[tuple[str, str]]:
        """The task styles, per language, of rows that nothing sealed is cut from (their chunk and their answers'
        chunks): the demo keeps a dialogue in each language it runs."""
        return {(r.get("task", ""), r.get("language", "")) for r, touched in touched_by if not touched & sealed}

    touched_by = [(r, touched_chunks(r)) for r in rows if r.get("chunk_ids")]

    def sealed_elsewhere(chunk: str) -> int:
        """Rows of other chapters on the chunks that holding this one out seals."""
        sealed, own = sealed_by([chunk]), chunks[chunk]["chapter_key"] if chunk in chunks else None
        return sum(1 for r in rows if r.get("chunk_ids") and r["chunk_ids"][0] in sealed and r["chapter_key"] != own)

    # Chapter by chapter, each draw counting what the draws before it sealed in every chapter: a chapter keeps a
    # chunk for train, and one for validation when it has three or more.
    test: list[str] = []
    sealed_so_far: set[str] = set()
    test_keep = {key: (found, 2 if len(found) >= 3 else 1) for key, found in seeds.items()}
    for key, found in seeds.items():
        drawn = draw_leaving(found, settings.test_fraction, key in large, test_keep, sealed_so_far)
        test += drawn
        sealed_so_far |= sealed_by(drawn) if drawn else set()
    if not test and len(everything) >= 2:  # the dataset's own minimum, as when it was drawn as one
        test = draw_leaving(everything, settings.test_fraction, True, test_keep, set()) or everything[:1]
    test_rows = rows_of(test)
    # Test holds out what its answers are cut from too (held_out_chunk_ids), as curate() and the leak check read it.
    test_text = held_out_text(held_out_chunk_ids(test, test_rows), chunks, [])
    test_sealed = test_text.sealed(chunks)
    limit = settings.test_fraction + settings.validation_fraction
    validation: list[str] = []
    sealed_so_far = set(test_sealed)
    train_keep = {key: (found, 1) for key, found in seeds.items()}
    for key, found in seeds.items():
        # A chunk all of whose rows retrieved test text would leave validation empty: pass it over.
        usable = [c for c in found if c not in test_sealed and seal(rows_of([c]), test_text, test_sealed, "test")[0]]
        drawn = draw_leaving(usable, limit, key in large, train_keep, sealed_so_far)
        validation += drawn
        sealed_so_far |= sealed_by(drawn) if drawn else set()
    if not validation:
        usable = [c for c in everything if c not in test_sealed and seal(rows_of([c]), test_text, test_sealed, "test")[0]]
        validation = draw_leaving(usable, limit, True, {"all": (everything, 1)}, test_sealed)

    validation_rows, removed = seal(rows_of(validation), test_text, test_sealed, "test")
    splits = {"validation": (sorted(validation), validation_rows), "test": (sorted(test), test_rows)}
    return {name: FrozenSplit(name, chunks, split_rows, FrozenSplit.digest(split_rows, chunks)) for name, (chunks, split_rows) in splits.items()}, removed


def _funnel(judged, chapter_counts, deduplicated, passing, result: Curated) -> list[dict[str, Any]]:
    """Rows per chapter after each step. Frozen held-out rows skip dedup and thresholds on later runs
    (they passed them when frozen), so they count as passing every step."""
    frozen = Counter(r["chapter_key"] for r in result.held_out_rows)
    dedup_kept = Counter(r["chapter_key"] for r in deduplicated)
    grounded_out = Counter(r["chapter_key"] for r in result.removed if r["removed_by"] == "groundedness")
    judge_pass = Counter(r["chapter_key"] for r in passing) + grounded_out
    if not result.newly_frozen:
        dedup_kept, judge_pass = dedup_kept + frozen, judge_pass + frozen
    final = Counter(r["chapter_key"] for rows in result.splits.values() for r in rows)
    rows = []
    for key in sorted(set(judged) | set(chapter_counts) | set(final)):
        counts = chapter_counts.get(key, {})
        rows.append({
            "chapter_key": key,
            "generated": counts.get("generated", len(judged.get(key, []))),
            "valid": counts.get("valid", len(judged.get(key, []))),
            "deduplicated": dedup_kept[key],
            "judged": judge_pass[key],
            "kept": final[key],
        })
    return rows


def rows_per_chapter(splits: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """Rows of each split per chapter: the paper's Table II."""
    return _rows_per(splits, "chapter_key", lambda r: r["chapter_key"])


def rows_per_style(splits: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """Rows of each split per task style (a row without a task is the default style's)."""
    return _rows_per(splits, "task", lambda r: task_style(r.get("task")).name)


def rows_per_chapter_pair(splits: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """Multi-hop rows of each split per pair of chapters they join (ragtune.generate.hops; either order is one pair)."""
    joined = {name: [r for r in rows if r.get("hops")] for name, rows in splits.items()}
    return _rows_per(joined, "chapters", lambda r: " + ".join(sorted({h["chapter_key"] for h in r["hops"]})))


def _rows_per(splits: dict[str, list[dict]], column: str, key_of) -> list[dict[str, Any]]:
    counts = {name: Counter(key_of(r) for r in splits.get(name, [])) for name in SPLITS}
    keys = sorted(set().union(*counts.values()))
    return [{column: key, **{name: counts[name][key] for name in SPLITS}, "total": sum(counts[name][key] for name in SPLITS)}
            for key in keys]
