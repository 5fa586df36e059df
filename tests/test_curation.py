"""Curation on real handbook passages and real embeddings: groundedness, the grounded judge (real
local LLM), dedup stages, the leak-free frozen split, exports loaded by their consumers' loaders,
and the dataset card."""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from ragtune.curate.curation import CurationSettings, FrozenEval, curate, touched_chunks
from ragtune.curate.dataset_card import render_card
from ragtune.curate.dedup import DedupSettings, deduplicate, near_duplicate_pairs
from ragtune.curate.exports import write_exports
from ragtune.curate.grounded_judge import QAJudgeSettings, judge_rows
from ragtune.generate.grounding import GroundednessSettings, groundedness_scores, sentence_texts, supporting_spans
from ragtune.text import words


@pytest.fixture(scope="module")
def chunk_rows(handbook_chunks):
    """The handbook's chunks as the rows chapter_chunks writes."""
    return [c.to_dict() for c in handbook_chunks]


def key_sentences(chunk: dict) -> list[str]:
    """The chunk's longest sentence and the one after it: real handbook statements to ask about."""
    sentences = sentence_texts(chunk["text"])
    prose = [i for i, t in enumerate(sentences) if "|" not in t and len(words(t)) <= 30] or list(range(len(sentences)))
    longest = max(prose, key=lambda i: len(words(sentences[i])))
    return sentences[longest : longest + 2]


def qa_row(chunk: dict, question: str | None = None, answer: str | None = None, judge_score: int = 8, extra_evidence=()) -> dict:
    """A pair about one passage, stored the way generation stores it: evidence, chunk ids, spans."""
    statement = key_sentences(chunk)
    answer = answer or " ".join(statement)
    question = question or f"Is it true that {statement[0].rstrip('.')}?"
    evidence = [chunk, *extra_evidence]
    return {
        "qa_id": f"{chunk['chunk_id']}:{abs(hash(question)) % 10**8}",
        "task": "factual_recall", "language": "en", "question": question, "answer": answer,
        "chapter_key": chunk["chapter_key"], "chapter_title": chunk["chapter_key"], "focus": chunk["section_path"][-1],
        "evidence": evidence, "chunk_ids": [e["chunk_id"] for e in evidence],
        "supporting_spans": supporting_spans(answer, evidence), "judge_score": judge_score, "groundedness": 0.9,
        "generation": {"model": "llamacpp:test.gguf"},
    }


def test_groundedness_credits_copies_and_paraphrases_not_inventions(chunk_rows, embedder):
    chunk = next(c for c in chunk_rows if "lithium" in c["text"].lower())
    other = next(c for c in chunk_rows if c["chapter_key"] != chunk["chapter_key"] and "eating" in c["chapter_key"])
    copied = qa_row(chunk, answer=key_sentences(chunk)[0])
    invented = qa_row(chunk, answer="Patients should drink green tea every morning and avoid travelling by train.")
    off_topic = qa_row(chunk, answer=key_sentences(other)[0])  # true elsewhere, not in this evidence
    paraphrase = qa_row(chunk, answer="Lithium is the best-supported medicine for keeping bipolar episodes from coming back.")
    scores = groundedness_scores([copied, invented, off_topic, paraphrase], embedder, GroundednessSettings())
    copied_s, invented_s, off_topic_s, paraphrase_s = (s["groundedness"] for s in scores)
    assert copied_s >= 0.95
    assert invented_s < 0.3 and off_topic_s < 0.6
    assert paraphrase_s > max(invented_s, off_topic_s) and paraphrase_s >= CurationSettings().min_groundedness
    assert [d["sentence"] for d in scores[1]["sentences"]] == [invented["answer"]]


def test_the_grounded_judge_scores_with_a_rubric_and_is_cached(chunk_rows, tmp_path, embedded_llm):
    chunk = next(c for c in chunk_rows if "lithium" in c["text"].lower())
    rows = [qa_row(chunk), qa_row(chunk, answer="Patients should drink green tea every morning and avoid trains.")]
    llm = embedded_llm(tmp_path)
    judged, failures = judge_rows(rows, "Bipolar and Related Disorders", llm, QAJudgeSettings(), weak=True)
    for row in judged:
        if row["judge_score"] is None:
            assert any(f["qa_id"] == row["qa_id"] and f["raw"] for f in failures)  # recorded, not dropped
            continue
        assert 1 <= row["judge_score"] <= 10 and row["judge_rationale"]
        assert set(row["judge_rubric"]) == {"faithful", "relevant", "clear", "useful"}
        assert row["judge_weak"] is True and row["judge_model"].startswith("llamacpp:")
    assert llm.calls == 2
    again = embedded_llm(tmp_path)
    assert judge_rows(rows, "Bipolar and Related Disorders", again, QAJudgeSettings(), weak=True)[0] == judged
    assert again.calls == 0


def planted_duplicates(chunk_rows):
    statements = [c for c in chunk_rows if len(key_sentences(c)) == 2 and len(words(key_sentences(c)[0])) >= 12]
    base = [qa_row(c) for c in statements[:30]]
    anxiety = next(c for c in chunk_rows if c["chapter_key"] == "anxiety-disorders")
    gad = qa_row(anxiety, question="What is the first-line treatment for generalized anxiety disorder?",
                 answer="Cognitive behavioural therapy and an SSRI are the first-line options for generalized anxiety disorder.")
    planted = {
        "exact": qa_row(statements[3], question=base[3]["question"].upper().replace("?", " ?"), judge_score=6),
        "minhash_question": qa_row(statements[5], question=base[5]["question"].replace("Is it true", "Is it really true"), judge_score=6),
        "minhash_pair": qa_row(statements[7], question=base[7]["question"].replace("Is it true that", "Does the handbook state that"),
                               judge_score=6),
        "semantic": qa_row(anxiety, question="Which treatment is tried first in generalized anxiety disorder?",
                           answer="Start with CBT or an SSRI.", judge_score=6),
    }
    return base + [gad], planted


def test_each_dedup_stage_removes_its_kind_across_chapters_and_keeps_the_better_copy(chunk_rows, embedder):
    base, planted = planted_duplicates(chunk_rows)
    rows = sorted(base + list(planted.values()), key=lambda r: -r["judge_score"])  # best first, as curate orders them
    vectors = embedder.encode([r["question"] for r in rows])
    result = deduplicate(rows, vectors, DedupSettings())
    removed = {r["qa_id"]: r for r in result.removed}
    for stage, row in planted.items():
        assert removed[row["qa_id"]]["dedup_stage"] == stage, stage
    assert len(result.kept) == len(base)  # nothing of the base set is lost
    assert sum(sum(c.values()) for c in result.counts.values()) == len(planted)
    table = result.counts_table()
    assert {r["chapter_key"] for r in table} == {r["chapter_key"] for r in rows}
    assert sum(r["semantic"] for r in table if r["chapter_key"] == "anxiety-disorders") == 1
    assert deduplicate(rows, vectors, DedupSettings(stages=["exact"])).counts_table()  # a stage can be turned off
    with pytest.raises(ValueError, match="unknown dedup stage"):
        deduplicate(rows, vectors, DedupSettings(stages=["fuzzy"]))


def test_split_holds_out_chunks_freezes_eval_and_never_leaks(chunk_rows, embedder):
    rows = [qa_row(c) for c in chunk_rows]
    by_chapter: dict[str, list] = {}
    for r in rows:
        by_chapter.setdefault(r["chapter_key"], []).append(r)
    vectors = {k: embedder.encode([r["question"] for r in v]) for k, v in by_chapter.items()}
    settings = CurationSettings(eval_fraction=0.25)
    first = curate(by_chapter, vectors, {}, settings, DedupSettings())
    held = set(first.frozen.held_out_chunks)
    assert first.newly_frozen and first.eval and first.train and held
    assert all(r["chunk_ids"][0] in held for r in first.eval)
    assert not any(touched_chunks(r) & held for r in first.train)
    assert near_duplicate_pairs(first.eval, first.train, DedupSettings(),
                                embedder.encode([r["question"] for r in first.eval]),
                                embedder.encode([r["question"] for r in first.train])) == []
    assert len(first.train) + len(first.eval) + len(first.removed) == len(rows)
    assert {f["chapter_key"] for f in first.funnel} == set(by_chapter)

    # A rerun with a new train question that paraphrases an eval question: eval is unchanged, the leak is withheld.
    frozen = FrozenEval.load(first.frozen.manifest(), first.frozen.rows, first.frozen.vectors)
    target = first.eval[0]
    free_chunk = next(c for c in chunk_rows if c["chunk_id"] not in held and c["chapter_key"] == target["chapter_key"])
    leak = qa_row(free_chunk, question=target["question"] + " Please explain.", answer=target["answer"])
    by_chapter[target["chapter_key"]].append(leak)
    vectors[target["chapter_key"]] = embedder.encode([r["question"] for r in by_chapter[target["chapter_key"]]])
    second = curate(by_chapter, vectors, {}, settings, DedupSettings(), frozen)
    assert not second.newly_frozen and second.eval == first.eval and second.frozen.sha256 == first.frozen.sha256
    assert any(r["qa_id"] == leak["qa_id"] and r["removed_by"].startswith("split:near_duplicate") for r in second.removed)
    with pytest.raises(ValueError, match="sha256"):
        FrozenEval.load(first.frozen.manifest(), [{**first.eval[0], "answer": "edited"}] + first.eval[1:])


def test_thresholds_remove_low_judge_scores_and_ungrounded_rows(chunk_rows, embedder):
    key = "depressive-disorders"
    rows = [qa_row(c) for c in chunk_rows if c["chapter_key"] == key][:12]
    rows[0]["judge_score"] = 3
    rows[1]["groundedness"] = 0.2
    rows[2]["judge_score"] = None  # the judge failed on it
    vectors = {key: embedder.encode([r["question"] for r in rows])}
    result = curate({key: rows}, vectors, {key: {"generated": 20, "valid": 14}}, CurationSettings(), DedupSettings())
    reasons = {r["qa_id"]: r["removed_by"] for r in result.removed}
    assert reasons[rows[0]["qa_id"]] == "judge" and reasons[rows[2]["qa_id"]] == "judge"
    assert reasons[rows[1]["qa_id"]] == "groundedness"
    deduplicated = len(rows) - sum(r["removed_by"].startswith("dedup:") for r in result.removed)
    assert [result.funnel[0][stage] for stage in ("generated", "valid", "deduplicated", "judged")] == [20, 14, deduplicated, deduplicated - 2]
    assert result.funnel[0]["kept"] == len(result.train) + len(result.eval) <= deduplicated - 3

    rows[0]["judge_weak"] = True  # the embedded judge's score is recorded, and filters only when trusted
    lenient = curate({key: rows}, vectors, {}, CurationSettings(), DedupSettings())
    assert rows[0]["qa_id"] not in {r["qa_id"] for r in lenient.removed if r["removed_by"] == "judge"}
    strict = curate({key: rows}, vectors, {}, CurationSettings(trust_weak_judge=True), DedupSettings())
    assert rows[0]["qa_id"] in {r["qa_id"] for r in strict.removed if r["removed_by"] == "judge"}


def load_llamafactory_converters():
    """LLaMA-Factory's own dataset_info parser and format converters. Its data package __init__
    pulls in multimodal plugins (torchaudio); the modules that read datasets do not need them."""
    try:
        import llamafactory
    except ImportError:
        pytest.skip("llamafactory is not installed (make test installs it without its dependencies)")
    package = types.ModuleType("llamafactory.data")
    package.__path__ = [str(Path(llamafactory.__file__).parent / "data")]
    sys.modules.setdefault("llamafactory.data", package)
    parser = importlib.import_module("llamafactory.data.parser")
    converter = importlib.import_module("llamafactory.data.converter")
    return parser.get_dataset_list, converter.get_dataset_converter


def test_exports_load_unchanged_in_their_consumers(chunk_rows, tmp_path):
    import datasets

    rows = [qa_row(c) for c in chunk_rows[:6]]
    dialogue = qa_row(chunk_rows[6])
    dialogue.update(task="counselling_dialogue", turns=[
        {"role": "patient", "content": "I keep worrying about everything at work."},
        {"role": "clinician", "content": "How long has the worry been going on?"},
        {"role": "patient", "content": "For most days over the last year."},
        {"role": "clinician", "content": "Worry on most days for six months or more fits generalized anxiety disorder."},
    ])
    splits = {"train": rows[:4] + [dialogue], "eval": rows[4:]}
    out = tmp_path / "exports"
    written = write_exports(out, splits, raft_pool=chunk_rows[10:30])

    hf = datasets.load_from_disk(str(written["hf_dataset"]))
    assert hf["train"].num_rows == 5 and hf["eval"].num_rows == 2
    assert hf["train"][4]["messages"][-1]["content"] == dialogue["turns"][3]["content"]
    assert hf["train"][0]["chunk_ids"] == rows[0]["chunk_ids"] and hf["train"][0]["id"] == rows[0]["qa_id"]
    on_disk = [json.loads(line) for line in open(written["messages_train"])]
    assert hf["train"]["messages"] == [r["messages"] for r in on_disk]  # the save_to_disk round trip changes nothing
    for name in ("alpaca_train", "sharegpt_train", "messages_train", "raft_train"):
        assert datasets.load_dataset("json", data_files=str(written[name]), split="train", cache_dir=str(tmp_path / "c")).num_rows == 5

    get_dataset_list, get_dataset_converter = load_llamafactory_converters()
    info = json.loads(written["dataset_info"].read_text())
    attrs = get_dataset_list(list(info), str(out))
    data_args = types.SimpleNamespace(dataset_dir=str(out), media_dir=str(out))
    for attr in attrs:
        rows_on_disk = datasets.load_dataset("json", data_files=str(out / attr.dataset_name), split="train", cache_dir=str(tmp_path / "c"))
        convert = get_dataset_converter(attr.formatting, attr, data_args)
        aligned = [convert(example) for example in rows_on_disk]
        assert all(a["_prompt"] and a["_response"] for a in aligned), attr.dataset_name  # LLaMA-Factory drops malformed rows
        if attr.dataset_name.endswith("train.jsonl") and "raft" not in attr.dataset_name:
            assert len(aligned[4]["_prompt"]) == 3  # the dialogue: user, assistant, user -> assistant
            assert aligned[4]["_response"][0]["content"] == dialogue["turns"][3]["content"]
            assert aligned[0]["_system"]

    pool_ids = {c["chunk_id"] for c in chunk_rows[10:30]}
    raft = [json.loads(line) for line in open(written["raft_train"])]
    for r in raft:
        distractors = [p for p in r["raft_passage_ids"] if p not in r["chunk_ids"]]
        assert len(distractors) == 3 and set(distractors) <= pool_ids  # only chunks the split may see
        assert r["raft_oracle_included"] == (set(r["chunk_ids"]) <= set(r["raft_passage_ids"]))


def test_dataset_card_has_table_chart_funnel_and_settings(tmp_path):
    counts = [{"chapter_key": "anxiety", "train": 5, "eval": 2, "total": 7}, {"chapter_key": "bipolar", "train": 3, "eval": 1, "total": 4}]
    funnel = [{"chapter_key": "anxiety", "generated": 20, "valid": 12, "deduplicated": 10, "judged": 8, "kept": 7}]
    card = render_card(
        name="test set", counts=counts, funnel=funnel, dedup_counts=[{"chapter_key": "anxiety", "exact": 1}],
        removed=[{"removed_by": "judge"}, {"removed_by": "judge"}], rows=[], chart_file="rows_per_chapter.png",
        files=["alpaca_train.jsonl"], languages=["en"], models={"generator": "m", "judge": "j (weak judge)"},
        settings={"curation": {"min_judge_score": 7}}, eval_sha256="abc",
    )
    assert card.startswith("---\n") and "| anxiety | 5 | 2 | 7 |" in card and "| **all** | 8 | 3 | 11 |" in card
    assert "![rows per chapter](rows_per_chapter.png)" in card and "| judge | 2 |" in card
    assert "generated → valid → deduplicated → judged → kept" in card and '"min_judge_score": 7' in card
    front = json.loads(card.split("---\n")[1])
    assert front["configs"][0]["data_files"][0]["path"] == "messages_train.jsonl"


def test_dataset_checks_fail_on_leakage_duplicates_and_ungrounded_rows(chunk_rows, embedder, tmp_path):
    from pipeline_assets.curate import mean_groundedness, near_duplicate_rate, no_train_eval_leakage
    from ragtune.jsonl import write_jsonl
    from resources.storage import DataDirResource

    storage = DataDirResource(data_dir=str(tmp_path))
    held, free = chunk_rows[0], chunk_rows[1:6]
    eval_row = qa_row(held)
    train = [qa_row(c) for c in free]

    def write(train_rows, groundedness=0.9):
        for split, rows in (("train", train_rows), ("eval", [eval_row])):
            rows = [{**r, "groundedness": groundedness} for r in rows]
            write_jsonl(storage.layout.dataset_rows(split), rows)
            np.save(storage.layout.dataset_row_questions(split), embedder.encode([r["question"] for r in rows]))
        storage.layout.frozen_eval_manifest.write_text(json.dumps({"held_out_chunks": [held["chunk_id"]]}))

    write(train)
    assert no_train_eval_leakage(storage=storage).passed and near_duplicate_rate(storage=storage).passed
    assert mean_groundedness(storage=storage).passed
    leak = qa_row(free[0], question=eval_row["question"].replace("Is it true", "Is it really true"), answer=eval_row["answer"])
    write(train + [leak])
    result = no_train_eval_leakage(storage=storage)
    assert not result.passed and result.metadata["near_duplicate_pairs"].value == 1
    on_held_chunk = qa_row(held, question="Which conditions does this passage describe in detail for clinicians?")
    write(train + [on_held_chunk])
    assert no_train_eval_leakage(storage=storage).metadata["train_rows_on_held_out_chunks"].value == 1
    write(train + [qa_row(free[1], question=train[1]["question"].upper())], groundedness=0.4)
    assert not near_duplicate_rate(storage=storage).passed and not mean_groundedness(storage=storage).passed

    # The RAFT export of the train split is checked too: a planted input passage from a held-out chunk fails the check.
    write(train)
    from ragtune.curate.exports import to_raft

    neighbour = qa_row(free[0], question="What else does the neighbouring passage add for clinicians?", extra_evidence=(held,))
    clean = [to_raft(r, chunk_rows[10:30], 3, 1.0, 0, withheld={held["chunk_id"]}) for r in [*train, neighbour]]
    assert all(held["chunk_id"] not in r["raft_passage_ids"] and held["text"] not in r["input"] for r in clean)
    write_jsonl(storage.layout.raft_export("train"), clean)
    assert no_train_eval_leakage(storage=storage).passed
    planted = to_raft(neighbour, chunk_rows[10:30], 3, 1.0, 0)  # without withheld: the neighbour's held-out chunk is in its input
    assert held["chunk_id"] in planted["raft_passage_ids"]
    write_jsonl(storage.layout.raft_export("train"), [*clean, planted])
    result = no_train_eval_leakage(storage=storage)
    assert not result.passed and result.metadata["raft_train_inputs_with_held_out_passages"].value == 1
