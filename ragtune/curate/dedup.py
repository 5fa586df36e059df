"""Duplicate removal across all chapters, in stages that each count what they remove per chapter:

1. exact: the same question once normalized (case, punctuation, spacing);
2. minhash_question: near-duplicate questions, MinHash LSH (datasketch) on their word sets;
3. minhash_pair: near-duplicate question+answer texts, MinHash LSH on word bigrams;
4. semantic: paraphrased questions, cosine of their embeddings over a FAISS HNSW graph.

Stages 2-4 only propose: two questions that differ in polarity (one asks what is not done, avoided, least
likely), in the people they ask about (children, pregnancy, older adults...), or where one asks the other's
question of fewer cases (narrows: '... in preschool children', '... with delayed expression') ask different
things however many words they share, so such a pair is never removed here (same_ask; English words only). The leakage check
(near_duplicate_pairs) does not apply it: for leaks, the stricter reading is the safe one. On the labelled dedup set
(tests/data/dedup_labels*.jsonl) the stages without it removed 11 of 15 negated and 15 of 20 narrowed
hard negatives of the dev split (bench/dedup.py). A dialogue repeats only a dialogue, at every stage: its
first exchange may be a pair's question and answer, and the dialogue still teaches what the pair does not.

With a verifier (ragtune.curate.dedup_judge, a local model asked whether two rows repeat each other), the
verifier decides every proposed pair that passes the ask check, and the semantic stage proposes each row's nearest questions
and nearest answers at a far lower cosine: a reworded paraphrase's question is often no nearer than a
hard negative's, its answer often is. Each model call costs seconds on CPU, so it is off by default.

Rows are visited best first (caller's order), so of two duplicates the better one stays. Every
stage is a near-linear pass (hash lookups, LSH buckets, k nearest neighbours on a graph), which is
what lets 100k pairs finish in seconds (bench/dedup.py); nothing compares all pairs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import faiss
import numpy as np
from datasketch import MinHash, MinHashLSH

from ragtune.generate.qa_fit import populations
from ragtune.tasks import shape_of
from ragtune.text import content_terms, jaccard, normalize_question, words

STAGES = ("exact", "minhash_question", "minhash_pair", "semantic")
# A question that negates or inverts ('What is not recommended ...?', 'contraindicated', 'least likely',
# 'protective factors') asks the opposite of one that does not.
# ('without' is no such word: 'binge eating without purging' names the condition; labelled dedup set, dev split.)
NEGATION = re.compile(r"\b(?:not|no|never|avoid\w*|contraindicat\w*|least|protective|unsafe|against|stop\w*|less)\b|n't\b", re.I)
# A question that asks another one's question of fewer cases: every content word of the other, and the rest
# after a qualifier ('... for ADHD in preschool children?', '... with delayed expression?').
QUALIFIER = re.compile(r"\b(?:in|with|among|during|after|before|when|while|for|who|whose|without)\b", re.I)


@dataclass
class DedupSettings:
    question_jaccard: float = 0.8  # word sets of two questions (the per-chapter filter uses the same)
    pair_jaccard: float = 0.7  # word bigrams of question + answer
    semantic_cosine: float = 0.88  # question embeddings (MiniLM): paraphrases 0.89-0.94, related questions 0.6-0.82
    num_perm: int = 64
    neighbours: int = 8  # nearest questions inspected per row in the semantic stage
    stages: list[str] = field(default_factory=lambda: list(STAGES))  # drop a name to turn a stage off
    # With a verifier (a model asked whether two rows repeat each other): the semantic stage proposes each
    # row's nearest questions AND nearest answers, this many of each, at this cosine or more; the verifier decides.
    verified_neighbours: int = 3  # union of question and answer neighbour lists, 3 each: 0.95 of the labelled paraphrases in a 10k pool
    verified_cosine: float = 0.5  # max(question, answer) cosine: 0.90-1.00 of the labelled paraphrases by split
    # The ask check (polarity, people asked about) still vetoes a pair the verifier would call a repeat: the 1.5B
    # called 4 of 14 narrowed held-out negatives repeats (bench/dedup.py, 2026-12-07).
    verified_ask_check: bool = True


@dataclass
class DedupResult:
    kept: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)  # row + dedup_stage + duplicate_of
    counts: dict[str, Counter] = field(default_factory=dict)  # chapter_key -> stage -> removed

    def counts_table(self) -> list[dict[str, Any]]:
        return [{"chapter_key": key, **{stage: self.counts[key][stage] for stage in STAGES}} for key in sorted(self.counts)]


def question_shingles(row: dict[str, Any]) -> set[str]:
    return set(words(row["question"]))


def pair_shingles(row: dict[str, Any]) -> set[str]:
    tokens = words(f"{row['question']} {row['answer']}")
    return {f"{a} {b}" for a, b in zip(tokens, tokens[1:])} or set(tokens)


def minhashes(shingle_sets: list[set[str]], num_perm: int) -> list[MinHash]:
    return MinHash.bulk([[s.encode() for s in shingles] for shingles in shingle_sets], num_perm=num_perm)


Verifier = Callable[[dict[str, Any], dict[str, Any]], bool]


def deduplicate(rows: list[dict[str, Any]], question_vectors: np.ndarray | None, settings: DedupSettings,
                verifier: Verifier | None = None, answer_vectors: np.ndarray | None = None) -> DedupResult:
    """Rows in priority order (best first); question_vectors are their L2-normalized question
    embeddings in the same order, needed only for the semantic stage. verifier(kept_row, row): whether
    two rows repeat each other (ragtune.curate.dedup_judge); when given, it, not the ask check, decides
    every pair the stages after `exact` propose, and the semantic stage also proposes nearest answers
    (answer_vectors, the answers' embeddings in the same order)."""
    unknown = set(settings.stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown dedup stage(s) {sorted(unknown)}; stages are {', '.join(STAGES)}")
    if verifier is not None and "semantic" in settings.stages and answer_vectors is None:
        raise ValueError("a verified semantic stage needs the answers' embeddings")
    result = DedupResult(counts={row["chapter_key"]: Counter() for row in rows})
    asks = [asked(row) for row in rows]

    dialogues = [shape_of(row.get("task")) == "dialogue" for row in rows]

    def repeats(i: int, j: int) -> bool:
        """Whether row i, proposed as a repeat of the kept row j, is one. A dialogue repeats only a dialogue:
        its first exchange may be a pair's question and answer (both built from one unit), and the dialogue
        still teaches what the pair does not (the e2e run lost its only dialogue so, 2026-12-07)."""
        if dialogues[i] != dialogues[j]:
            return False
        if verifier is None:
            return same_ask(rows[i], rows[j], asks[i], asks[j])
        return (not settings.verified_ask_check or same_ask(rows[i], rows[j], asks[i], asks[j])) and verifier(rows[j], rows[i])

    alive = list(range(len(rows)))
    for stage in STAGES:
        if stage not in settings.stages or not alive:
            continue
        if stage == "exact":
            duplicate_of = _exact(rows, alive, dialogues)
        elif stage == "minhash_question":
            duplicate_of = _minhash(rows, alive, question_shingles, settings.question_jaccard, settings.num_perm, repeats)
        elif stage == "minhash_pair":
            duplicate_of = _minhash(rows, alive, pair_shingles, settings.pair_jaccard, settings.num_perm, repeats)
        else:
            if question_vectors is None:
                raise ValueError("the semantic dedup stage needs question embeddings")
            if verifier is not None:
                duplicate_of = _verified_semantic(question_vectors, answer_vectors, alive, settings, repeats, [r["answer"] for r in rows])
            else:
                duplicate_of = _semantic(question_vectors, alive, settings.semantic_cosine, settings.neighbours, repeats)
        for i, original in duplicate_of.items():
            row = rows[i]
            result.counts[row["chapter_key"]][stage] += 1
            result.removed.append({**row, "dedup_stage": stage, "duplicate_of": rows[original]["qa_id"]})
        alive = [i for i in alive if i not in duplicate_of]
    result.kept = [rows[i] for i in alive]
    return result


def _exact(rows: list[dict[str, Any]], alive: list[int], dialogues: list[bool]) -> dict[int, int]:
    first: dict[tuple[bool, str], int] = {}
    duplicate_of = {}
    for i in alive:
        key = (dialogues[i], normalize_question(rows[i]["question"]))
        if key in first:
            duplicate_of[i] = first[key]
        else:
            first[key] = i
    return duplicate_of


def asked(row: dict[str, Any]) -> tuple[bool, frozenset[str]]:
    """What a question's words cannot show when they overlap: whether it negates, and whom it asks about."""
    return bool(NEGATION.search(row["question"])), frozenset(populations(row["question"]))


def narrows(question: str, other: str) -> bool:
    """Whether `question` asks `other`'s question of fewer cases: all of other's content words and more, each
    of the more after a qualifier. On the labelled dedup set it told apart 11 of 20 narrowed dev negatives and
    no paraphrase ('What happens in refeeding syndrome in malnourished patients?' adds 'happens' before it)."""
    mine, theirs = set(content_terms(question)), set(content_terms(other))
    if not theirs < mine:
        return False
    first = QUALIFIER.search(question)
    tail = question[first.start():].lower() if first else ""
    return bool(first) and all(re.search(rf"\b{re.escape(word.lower())}", tail) for _, word in mine - theirs)


def same_ask(first: dict[str, Any], second: dict[str, Any], first_asks=None, second_asks=None) -> bool:
    """Whether two questions may ask the same thing however many words they share: the same polarity and
    people, and neither asks the other's question of fewer cases."""
    return ((first_asks or asked(first)) == (second_asks or asked(second))
            and not narrows(first["question"], second["question"]) and not narrows(second["question"], first["question"]))


def _minhash(rows: list[dict[str, Any]], alive: list[int], shingle, threshold: float, num_perm: int,
             repeats: Callable[[int, int], bool]) -> dict[int, int]:
    """LSH finds candidates among the rows kept so far; _confirmed checks each by exact Jaccard."""
    shingles = {i: shingle(rows[i]) for i in alive}
    hashes = dict(zip(alive, minhashes([shingles[i] for i in alive], num_perm)))
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    duplicate_of = {}
    for i in alive:
        match = _confirmed(lsh, hashes[i], shingles[i], shingles, threshold, lambda j: repeats(i, j))
        if match is not None:
            duplicate_of[i] = match
        else:
            lsh.insert(i, hashes[i])
    return duplicate_of


def _confirmed(lsh: MinHashLSH, minhash: MinHash, shingles: set[str], indexed, threshold: float,
               compatible: Callable[[Any], bool] = lambda key: True) -> Any:
    """The first LSH candidate whose exact Jaccard with `shingles` reaches the threshold and that asks the
    same way (compatible), or None: LSH only proposes, so its false positives never count as duplicates."""
    return next((key for key in lsh.query(minhash) if jaccard(shingles, indexed[key]) >= threshold and compatible(key)), None)


def _semantic(vectors: np.ndarray, alive: list[int], threshold: float, neighbours: int,
              repeats: Callable[[int, int], bool]) -> dict[int, int]:
    """Each row's nearest questions on an HNSW graph; a row goes when a better row that stays is
    at least `threshold` similar and asks the same way."""
    scores, found = _neighbours(np.ascontiguousarray(vectors[alive], dtype=np.float32), neighbours)
    kept_positions: set[int] = set()
    duplicate_of = {}
    for position, i in enumerate(alive):
        match = next(
            (int(p) for p, score in zip(found[position], scores[position])
             if 0 <= p < position and score >= threshold and int(p) in kept_positions and repeats(i, alive[int(p)])),
            None,
        )
        if match is not None:
            duplicate_of[i] = alive[match]
        else:
            kept_positions.add(position)
    return duplicate_of


def _verified_semantic(question_vectors: np.ndarray, answer_vectors: np.ndarray, alive: list[int], settings: DedupSettings,
                       verified: Callable[[int, int], bool], answer_texts: list[str]) -> dict[int, int]:
    """Each row's nearest earlier kept questions and nearest earlier kept answers (k of each, on HNSW graphs
    as in _semantic), most similar first; a row goes at the first candidate the verifier confirms."""
    k = settings.verified_neighbours
    found = [_neighbours(np.ascontiguousarray(vectors[alive], dtype=np.float32), 4 * k) for vectors in (question_vectors, answer_vectors)]
    answers = [answer_texts[i] for i in alive]
    kept_positions: set[int] = set()
    duplicate_of = {}
    for position, i in enumerate(alive):
        similarity: dict[int, float] = {}
        for by_answer, (scores, neighbours) in enumerate(found):
            # The same answer text (an abstention's template, the two rows the answer cap allows) says nothing
            # of the questions: only the question list proposes such a pair.
            earlier = [(int(p), float(score)) for p, score in zip(neighbours[position], scores[position])
                       if int(p) in kept_positions and not (by_answer and answers[int(p)] == answers[position])][:k]
            for p, score in earlier:
                similarity[p] = max(similarity.get(p, -1.0), score)
        candidates = sorted((p for p, score in similarity.items() if score >= settings.verified_cosine), key=lambda p: -similarity[p])
        match = next((alive[p] for p in candidates if verified(i, alive[p])), None)
        if match is not None:
            duplicate_of[i] = match
        else:
            kept_positions.add(position)
    return duplicate_of


def _neighbours(vectors: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, positions) of each row's `count` nearest rows by inner product on an HNSW graph."""
    index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = max(32, 2 * count)
    index.add(vectors)
    return index.search(vectors, min(count + 1, len(vectors)))


def near_duplicate_pairs(left: list[dict[str, Any]], right: list[dict[str, Any]], settings: DedupSettings,
                         left_vectors: np.ndarray | None = None, right_vectors: np.ndarray | None = None) -> list[tuple[str, str, str]]:
    """(left qa_id, right qa_id, stage) for every right row that duplicates some left row by any
    enabled stage: the leakage test between train (left) and eval (right)."""
    found = []
    exact = {normalize_question(r["question"]): r["qa_id"] for r in left}
    for r in right:
        if normalize_question(r["question"]) in exact:
            found.append((exact[normalize_question(r["question"])], r["qa_id"], "exact"))
    for stage, shingle, threshold in (("minhash_question", question_shingles, settings.question_jaccard),
                                      ("minhash_pair", pair_shingles, settings.pair_jaccard)):
        if not left or not right:
            break
        lsh = MinHashLSH(threshold=threshold, num_perm=settings.num_perm)
        left_sets = [shingle(r) for r in left]
        for j, h in enumerate(minhashes(left_sets, settings.num_perm)):
            lsh.insert(j, h)
        right_sets = [shingle(r) for r in right]
        for r, shingles, h in zip(right, right_sets, minhashes(right_sets, settings.num_perm)):
            match = _confirmed(lsh, h, shingles, left_sets, threshold)
            if match is not None:
                found.append((left[match]["qa_id"], r["qa_id"], stage))
    if left_vectors is not None and right_vectors is not None and len(left) and len(right):
        index = faiss.IndexFlatIP(left_vectors.shape[1])
        index.add(np.ascontiguousarray(left_vectors, dtype=np.float32))
        scores, nearest = index.search(np.ascontiguousarray(right_vectors, dtype=np.float32), 1)
        for r, score, j in zip(right, scores[:, 0], nearest[:, 0]):
            if score >= settings.semantic_cosine:
                found.append((left[int(j)]["qa_id"], r["qa_id"], "semantic"))
    return found
