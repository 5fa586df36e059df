"""Curation on real handbook passages and real embeddings: groundedness, the grounded judge (real
local LLM), dedup stages, the leak-free frozen split, exports loaded by their consumers' loaders,
and the dataset card."""

from __future__ import annotations

import difflib
import importlib
import json
import sys
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ragtune.curate.curation import CurationSettings, FrozenSplit, curate, load_frozen, rows_per_style, shown_chunks
from ragtune.curate.dataset_card import render_card
from ragtune.curate.dedup import DedupSettings, deduplicate, narrows, near_duplicate_pairs
from ragtune.curate.exports import to_alpaca, write_exports
from ragtune.curate.grounded_judge import QAJudgeSettings, judge_rows
from ragtune.curate.groundedness import GroundednessSettings, groundedness_scores
from ragtune.generate.grounding import sentence_texts, supporting_spans
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


def test_a_negated_or_narrowed_question_is_no_duplicate_however_many_words_it_shares(embedder):
    """Hard negatives of the labelled dedup set: the stages removed 11 of 15 negated and 15 of 20 narrowed
    questions of its dev split before the ask check (bench/dedup.py). The check knows English negation,
    qa_fit's populations, and a question that adds a qualifier to all of another's words (a subtype, a setting)."""
    def row(qa_id, question, answer):
        return {"qa_id": qa_id, "chapter_key": f"ch-{qa_id}", "question": question, "answer": answer}

    rows = [
        row("a", "Which antidepressants are recommended for bipolar depression?", "Quetiapine and lurasidone are recommended."),
        row("b", "Which antidepressants are not recommended for bipolar depression?", "Antidepressants alone are not recommended."),
        row("c", "How is obsessive-compulsive disorder treated?", "With exposure and response prevention and an SSRI."),
        row("d", "How is obsessive-compulsive disorder treated in children?", "With family-based exposure therapy first."),
        row("e", "How is obsessive-compulsive disorder really treated?", "With exposure and response prevention and an SSRI."),
        row("f", "Which medicine is first-line for panic disorder?", "An SSRI is the usual first-line medicine."),
        row("g", "Which medicine is first-line for panic disorder with a heart condition?", "Sertraline, with the heart checked first."),
    ]
    vectors = embedder.encode([r["question"] for r in rows])
    result = deduplicate(rows, vectors, DedupSettings())
    assert [(r["qa_id"], r["duplicate_of"]) for r in result.removed] == [("e", "c")]  # a true near-duplicate still goes
    threshold = DedupSettings().semantic_cosine  # what kept b, d and g is the ask check: their questions are that close
    assert all(float(vectors[i] @ vectors[j]) >= threshold for i, j in ((0, 1), (2, 3), (5, 6)))
    assert narrows(rows[6]["question"], rows[5]["question"]) and not narrows(rows[5]["question"], rows[6]["question"])
    assert not narrows(rows[4]["question"], rows[2]["question"])  # 'really' qualifies nothing


def shared_text(a: str, b: str) -> int:
    """Length of the longest common substring, by difflib (not by the n-gram code under test)."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size


def with_neighbours(chunk_rows: list[dict]) -> dict[str, list[dict]]:
    """One pair per chunk whose evidence also holds the next chunk of its chapter (as retrieval returns
    neighbours), by chapter."""
    by_chapter: dict[str, list] = {}
    for here, after in zip(chunk_rows, chunk_rows[1:] + [None]):
        extra = (after,) if after and after["chapter_key"] == here["chapter_key"] else ()
        by_chapter.setdefault(here["chapter_key"], []).append(qa_row(here, extra_evidence=extra))
    return by_chapter


def test_validation_passes_over_a_chunk_whose_rows_all_answer_from_test_text(chunk_rows, embedder):
    chapter = [c for c in chunk_rows if c["chapter_key"] == chunk_rows[0]["chapter_key"]][:12]
    by_chapter = {chapter[0]["chapter_key"]: [qa_row(c) for c in chapter]}
    chunks = {c["chunk_id"]: c for c in chunk_rows}
    settings = CurationSettings(test_fraction=0.15, validation_fraction=0.1)

    def run():
        return curate(by_chapter, {k: embedder.encode([r["question"] for r in v]) for k, v in by_chapter.items()}, {}, settings,
                      DedupSettings(), chunks)

    first = run()
    test_chunk = chunks[first.frozen["test"].held_out_chunks[0]]
    passed_over = set(first.frozen["validation"].held_out_chunks)
    assert passed_over and first.splits["validation"]
    # Each row of the chosen validation chunks now answers with the test chunk's sentences (as retrieval can):
    by_chapter[chapter[0]["chapter_key"]] = [
        qa_row(c, answer=" ".join(key_sentences(test_chunk)), extra_evidence=(test_chunk,)) if c["chunk_id"] in passed_over else qa_row(c)
        for c in chapter]
    second = run()
    assert second.frozen["test"].held_out_chunks == first.frozen["test"].held_out_chunks
    assert second.splits["validation"] and not set(second.frozen["validation"].held_out_chunks) & passed_over
    # Passed over, those rows are train candidates that answer from test text: sealed out of train instead.
    assert {r["removed_by"] for r in second.removed if r["chunk_ids"][0] in passed_over} == {"split:held_out_chunk"}


def test_three_splits_are_drawn_by_chunks_frozen_and_show_no_held_out_text(chunk_rows, embedder):
    by_chapter = with_neighbours(chunk_rows)
    rows = [r for v in by_chapter.values() for r in v]
    vectors = {k: embedder.encode([r["question"] for r in v]) for k, v in by_chapter.items()}
    texts = {c["chunk_id"]: c["text"] for c in chunk_rows}
    chunks = {c["chunk_id"]: c for c in chunk_rows}
    settings = CurationSettings(test_fraction=0.15, validation_fraction=0.1)
    first = curate(by_chapter, vectors, {}, settings, DedupSettings(), chunks)
    held = {name: set(first.frozen[name].held_out_chunks) for name in ("validation", "test")}
    assert first.newly_frozen and all(first.splits[name] for name in ("train", "validation", "test"))
    assert not held["validation"] & held["test"]
    for name in ("validation", "test"):
        assert all(r["chunk_ids"][0] in held[name] for r in first.splits[name])
    assert len(first.train) + len(first.held_out_rows) + len(first.removed) == len(rows)

    # Adjacent chunks overlap (32 tokens), so some rows sit on a held-out chunk's neighbour: they are dropped...
    held_all = held["validation"] | held["test"]
    reasons = Counter(r["removed_by"] for r in first.removed)
    assert reasons["split:overlaps_held_out_text"] >= 1 and reasons["split:held_out_chunk"] == 0
    dropped = next(r for r in first.removed if r["removed_by"] == "split:overlaps_held_out_text")
    assert max(shared_text(dropped["evidence"][0]["text"], texts[c]) for c in held_all) >= 60
    # ...and where a train row's retrieved neighbour is held out, that passage leaves its evidence.
    withheld = [r for r in first.train if r.get("evidence_withheld")]
    assert withheld
    for chunk_id in {c for r in withheld for c in r["evidence_withheld"]}:
        assert chunk_id in held_all or max(shared_text(texts[chunk_id], texts[c]) for c in held_all) >= 60
    # Checked by difflib: no train text holds 100 characters of a held-out chunk (the handbook's shared
    # boilerplate, "...cause clinically significant distress or impairment.", stays under 90).
    for row in first.train:
        assert not shown_chunks(row) & held_all
        for text in [row["question"], row["answer"], *(e["text"] for e in row["evidence"])]:
            assert all(shared_text(text, texts[c]) < 100 for c in held_all), row["qa_id"]
    for row in first.splits["validation"]:  # validation shows no test text either
        assert all(shared_text(e["text"], texts[c]) < 100 for e in row["evidence"] for c in held["test"])
    held_rows = first.held_out_rows
    assert near_duplicate_pairs(held_rows, first.train, DedupSettings(), embedder.encode([r["question"] for r in held_rows]),
                                embedder.encode([r["question"] for r in first.train])) == []
    assert {f["chapter_key"] for f in first.funnel} == set(by_chapter)

    # A rerun with a train question made of a test question's words in another order (no 13-word window
    # in common, the same word set), and one copying a test answer: the held-out splits are unchanged, both are withheld.
    frozen = load_frozen({n: first.frozen[n].manifest() for n in ("validation", "test")}, {n: first.frozen[n].rows for n in ("validation", "test")},
                         {n: first.frozen[n].vectors for n in ("validation", "test")})
    target = first.splits["test"][0]
    sealed = first.sealed["train"]
    free_chunk = next(c for c in chunk_rows if c["chunk_id"] not in sealed and c["chapter_key"] == target["chapter_key"])
    shuffled = target["question"].split()
    leak = qa_row(free_chunk, question=" ".join(shuffled[::2] + shuffled[1::2]))
    copied = qa_row(free_chunk, question="What does the handbook say here, in its own words?", answer=target["answer"])
    by_chapter[target["chapter_key"]] += [leak, copied]
    vectors[target["chapter_key"]] = embedder.encode([r["question"] for r in by_chapter[target["chapter_key"]]])
    # An edit earlier in the book moved every page by one: the frozen rows keep their hash and show the new pages.
    moved = {chunk_id: {**c, "pages": [p + 1 for p in c["pages"]]} for chunk_id, c in chunks.items()}
    second = curate(by_chapter, vectors, {}, settings, DedupSettings(), moved, frozen)
    assert not second.newly_frozen and [r["qa_id"] for r in second.splits["test"]] == [r["qa_id"] for r in first.splits["test"]]
    assert second.frozen["test"].sha256 == first.frozen["test"].sha256
    for before, after in zip(first.held_out_rows, second.held_out_rows):
        assert [e["pages"] for e in after["evidence"]] == [[p + 1 for p in e["pages"]] for e in before["evidence"]]
    reasons = {r["qa_id"]: r["removed_by"] for r in second.removed}
    assert reasons[leak["qa_id"]] == "split:near_duplicate_of_held_out"
    assert reasons[copied["qa_id"]] == "split:overlaps_held_out_text"  # a test answer copied into a train row
    with pytest.raises(ValueError, match="sha256"):
        FrozenSplit.load("test", first.frozen["test"].manifest(), [{**target, "answer": "edited"}] + first.splits["test"][1:])


def test_thresholds_remove_low_judge_scores_and_ungrounded_rows(chunk_rows, embedder):
    key = "depressive-disorders"
    rows = [qa_row(c) for c in chunk_rows if c["chapter_key"] == key][:12]
    rows[0]["judge_score"] = 3
    rows[1]["groundedness"] = 0.2
    rows[2]["judge_score"] = None  # the judge failed on it
    vectors = {key: embedder.encode([r["question"] for r in rows])}
    chunks = {c["chunk_id"]: c for c in chunk_rows}
    result = curate({key: rows}, vectors, {key: {"generated": 20, "valid": 14}}, CurationSettings(), DedupSettings(), chunks)
    reasons = {r["qa_id"]: r["removed_by"] for r in result.removed}
    assert reasons[rows[0]["qa_id"]] == "judge" and reasons[rows[2]["qa_id"]] == "judge"
    assert reasons[rows[1]["qa_id"]] == "groundedness"
    deduplicated = len(rows) - sum(r["removed_by"].startswith("dedup:") for r in result.removed)
    assert [result.funnel[0][stage] for stage in ("generated", "valid", "deduplicated", "judged")] == [20, 14, deduplicated, deduplicated - 2]
    assert result.funnel[0]["kept"] == len(result.train) + len(result.held_out_rows) <= deduplicated - 3

    rows[0]["judge_weak"] = True  # the embedded judge's score is recorded, and filters only when trusted
    lenient = curate({key: rows}, vectors, {}, CurationSettings(), DedupSettings(), chunks)
    assert rows[0]["qa_id"] not in {r["qa_id"] for r in lenient.removed if r["removed_by"] == "judge"}
    strict = curate({key: rows}, vectors, {}, CurationSettings(trust_weak_judge=True), DedupSettings(), chunks)
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
    splits = {"train": rows[:4] + [dialogue], "validation": rows[4:5], "test": rows[5:]}
    out = tmp_path / "exports"
    written = write_exports(out, splits, raft_pool=chunk_rows[10:30])

    hf = datasets.load_from_disk(str(written["hf_dataset"]))
    assert (hf["train"].num_rows, hf["validation"].num_rows, hf["test"].num_rows) == (5, 1, 1)
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
        if attr.dataset_name.endswith("train.jsonl") and not attr.dataset_name.startswith(("raft", "counselling")):  # one record per row
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
    counts = [{"chapter_key": "anxiety", "train": 5, "validation": 1, "test": 2, "total": 8},
              {"chapter_key": "bipolar", "train": 3, "validation": 1, "test": 1, "total": 5}]
    funnel = [{"chapter_key": "anxiety", "generated": 20, "valid": 12, "deduplicated": 10, "judged": 8, "kept": 7}]
    card = render_card(
        name="test set", counts=counts, funnel=funnel, dedup_counts=[{"chapter_key": "anxiety", "exact": 1}],
        removed=[{"removed_by": "judge"}, {"removed_by": "judge"}], rows=[], chart_file="rows_per_chapter.png",
        files=["alpaca_train.jsonl"], languages=["en"], models={"generator": "m", "judge": "j (weak judge)"},
        settings={"curation": {"min_judge_score": 7}}, split_sha256={"validation": "v1", "test": "t1"},
        styles=rows_per_style({"train": [{"task": "self_instruct"}, {"task": None}, {}], "test": [{"task": "factual_recall"}]}),
    )
    assert "## Rows per task style" in card and "| factual_recall | 2 | 0 | 1 | 3 |" in card and "| self_instruct | 1 | 0 | 0 | 1 |" in card
    assert card.startswith("---\n") and "| anxiety | 5 | 1 | 2 | 8 |" in card and "| **all** | 8 | 2 | 3 | 13 |" in card
    assert "8 train, 2 validation and 3 test rows" in card and "`t1`" in card
    assert "![rows per chapter](rows_per_chapter.png)" in card and "| judge | 2 |" in card
    assert "generated → valid → deduplicated → judged → kept" in card and '"min_judge_score": 7' in card
    front = json.loads(card.split("---\n")[1])
    assert [f["split"] for f in front["configs"][0]["data_files"]] == ["train", "validation", "test"]
    assert front["configs"][0]["data_files"][0]["path"] == "messages_train.jsonl"


def test_dataset_checks_fail_on_leakage_duplicates_and_ungrounded_rows(chunk_rows, handbook_index, embedder, tmp_path):
    from pipeline_assets.curate import mean_groundedness, near_duplicate_rate, no_split_leakage, no_split_leakage_in_exports
    from ragtune.curate.exports import to_raft
    from ragtune.jsonl import write_jsonl
    from resources.storage import DataDirResource

    storage = DataDirResource(data_dir=str(tmp_path))
    handbook_index.save(storage.layout.index_dir)
    chapter = [c for c in chunk_rows if c["chapter_key"] == "depressive-disorders"]
    test_chunk, validation_chunk, neighbour = chapter[0], chapter[5], chapter[1]  # chunk 1 overlaps chunk 0 by a sentence
    assert "Major depressive disorder is the most common of these." in test_chunk["text"] and neighbour["text"].startswith("Major depressive")
    free = [c for i, c in enumerate(chapter) if i not in (0, 1, 4, 5, 6)]  # not held out, not next to a held-out chunk
    assert len(free) >= 3
    held_rows = {"validation": [qa_row(validation_chunk)], "test": [qa_row(test_chunk)]}
    train = [qa_row(c) for c in free]

    def write(train_rows, groundedness=0.9, validation=None):
        splits = {"train": train_rows, **held_rows, **({"validation": validation} if validation else {})}
        for split, rows in splits.items():
            rows = [{**r, "groundedness": groundedness} for r in rows]
            write_jsonl(storage.layout.dataset_rows(split), rows)
            write_jsonl(storage.layout.alpaca_split(split), [to_alpaca(r) for r in rows])
            np.save(storage.layout.dataset_row_questions(split), embedder.encode([r["question"] for r in rows]))
        manifest = {name: FrozenSplit(name, [r["chunk_ids"][0] for r in rows], rows, "-").manifest() for name, rows in held_rows.items()}
        storage.layout.write_frozen_splits(manifest, held_rows, {n: embedder.encode([r["question"] for r in v]) for n, v in held_rows.items()})

    def leaks() -> dict:
        """What the dataset's check and the exports' check find together (each reads its own asset's files)."""
        result, exported = no_split_leakage(storage=storage), no_split_leakage_in_exports(storage=storage)
        pairs = result.metadata["near_duplicate_pairs"].value
        assert result.passed == (not pairs and not result.metadata["leaks_by_file"].value)
        assert exported.passed == (not exported.metadata["leaks_by_file"].value)
        assert not {n for n in exported.metadata["leaks_by_file"].value if not n.startswith("exports/")}
        return result.metadata["leaks_by_file"].value | exported.metadata["leaks_by_file"].value | ({"pairs": pairs} if pairs else {})

    write(train)
    assert leaks() == {} and near_duplicate_rate(storage=storage).passed and mean_groundedness(storage=storage).passed
    test_row = held_rows["test"][0]
    paraphrase = qa_row(free[0], question=test_row["question"].replace("Is it true", "Is it really true"), answer=free[0]["text"][:40])
    write(train + [paraphrase])
    assert leaks() == {"pairs": 1}
    on_test_chunk = qa_row(test_chunk, question="Which conditions does this passage describe in detail for clinicians?")
    write(train + [on_test_chunk])
    assert set(leaks()) >= {"dataset/rows/train.jsonl", "dataset/train.jsonl"}
    # The overlapping neighbour: a different chunk id, but it repeats the test chunk's last sentence.
    on_neighbour = qa_row(free[1], question="What does the neighbouring passage add for clinicians?", extra_evidence=(neighbour,))
    write(train + [on_neighbour])
    assert leaks()["dataset/rows/train.jsonl"] == [on_neighbour["qa_id"]]
    validation_showing_test = qa_row(validation_chunk, question="What does the validation passage add?", extra_evidence=(test_chunk,))
    write(train, validation=[validation_showing_test])
    assert leaks() == {name: [validation_showing_test["qa_id"]] for name in ("dataset/rows/validation.jsonl", "dataset/validation.jsonl")}
    write(train + [qa_row(free[1], question=train[1]["question"].upper())], groundedness=0.4)
    assert not near_duplicate_rate(storage=storage).passed and not mean_groundedness(storage=storage).passed
    storage.layout.write_json(storage.layout.curation_report, {"dedup_settings": {"stages": []}})  # the run deduplicated nothing:
    assert near_duplicate_rate(storage=storage).passed  # its check reads the run's settings, not the defaults
    storage.layout.curation_report.unlink()

    # Every export a trainer could read is checked: RAFT inputs, and any other file, by chunk id and by text.
    write(train)
    pool = chunk_rows[20:40]
    clean = [to_raft(r, pool, 3, 1.0, 0) for r in train]
    write_jsonl(storage.layout.raft_export("train"), clean)
    assert leaks() == {}
    planted = to_raft(qa_row(free[2], extra_evidence=(test_chunk,)), pool, 3, 1.0, 0)
    write_jsonl(storage.layout.raft_export("train"), [*clean, planted])
    assert leaks() == {"exports/raft_train.jsonl": [planted["id"]]}
    write_jsonl(storage.layout.raft_export("train"), clean)
    alpaca = [to_alpaca(r) for r in train]
    planted_sentence = max(sentence_texts(test_chunk["text"]), key=len)
    assert len(words(planted_sentence)) >= 13
    alpaca[0]["output"] += " " + planted_sentence  # text only, no chunk id: the shared window finds it
    write_jsonl(storage.layout.exports_dir / "alpaca_train.jsonl", alpaca)
    assert leaks() == {"exports/alpaca_train.jsonl": [alpaca[0]["id"]]}
    assert no_split_leakage(storage=storage).passed  # a stale export does not block the dataset step that rewrites it


def test_a_planted_held_out_question_in_any_training_input_fails_the_blocking_check(chunk_rows, tmp_path):
    """SFT, RAFT, PT and DPO inputs are all read; a short question counts as a whole prompt, a long one
    inside any text."""
    from pipeline_assets.curate import dataset_exports, instruction_dataset, no_held_out_questions
    from pipeline_assets.definitions import defs
    from pipeline_assets.train import preference_pairs, refuse_held_out_questions
    from ragtune.curate.exports import to_raft
    from ragtune.curate.preference import preference, write_dpo
    from ragtune.curate.pt_corpus import PT_FILE
    from ragtune.jsonl import write_jsonl
    from resources.storage import DataDirResource

    storage = DataDirResource(data_dir=str(tmp_path))
    layout = storage.layout
    chapter = [c for c in chunk_rows if c["chapter_key"] == "anxiety-disorders"]
    test_row = qa_row(chapter[0], question="How long must worry last before generalized anxiety disorder is diagnosed?")
    short_test = qa_row(chapter[1], question="What is agoraphobia?")
    validation_row = qa_row(chapter[2], question="Which body symptoms come with a panic attack in adults?")
    train = [qa_row(c) for c in chapter[5:9]]
    held = {"validation": [validation_row], "test": [test_row, short_test]}
    manifest = {name: FrozenSplit(name, [r["chunk_ids"][0] for r in rows], rows, "-").manifest() for name, rows in held.items()}
    layout.write_frozen_splits(manifest, held, {n: np.zeros((len(v), 4), np.float32) for n, v in held.items()})
    for split, rows in {"train": train, **held}.items():
        write_jsonl(layout.dataset_rows(split), rows)
        write_jsonl(layout.alpaca_split(split), [to_alpaca(r) for r in rows])
    raft = [to_raft(r, chapter[10:20], 2, 1.0, 0) for r in train]
    write_jsonl(layout.raft_export("train"), raft)
    pt = [{"text": c["text"], "id": c["chunk_id"]} for c in chapter[5:9]]
    write_jsonl(layout.exports_dir / PT_FILE, pt)
    dpo = [preference(r["question"], r["answer"], "I do not know.", f"{r['qa_id']}:reference", r["qa_id"], r["chapter_key"], "reference",
                      "reference", "sft", "test") for r in train]
    write_dpo(dpo, layout.dpo_dir, layout.train_preference_pairs.stem)

    checks = {key.asset_key.to_user_string() for key in defs.resolve_asset_graph().asset_check_keys if key.name == "no_held_out_questions_in_training"}
    assert checks == {"instruction_dataset", "dataset_exports", "preference_pairs"}
    checks = [no_held_out_questions(asset, scope) for asset, scope in
              ((instruction_dataset, "dataset"), (dataset_exports, "exports"), (preference_pairs, "preferences"))]

    def found() -> dict:
        """What the three checks (each reading the inputs its asset writes) find together."""
        by_file = {}
        for check in checks:
            result = check(storage=storage)
            assert result.passed == (not result.metadata["by_file"].value)
            by_file |= result.metadata["by_file"].value
        return by_file

    assert found() == {}
    for scope in ("dataset", "exports", "preferences"):
        refuse_held_out_questions(storage, scope)

    def planted(path, records, index, field, text):
        write_jsonl(path, [{**r, field: text} if i == index else r for i, r in enumerate(records)])
        try:
            return found()
        finally:
            write_jsonl(path, records)

    sft = [to_alpaca(r) for r in train]
    assert planted(layout.alpaca_split("train"), sft, 1, "instruction", short_test["question"].upper()) == {
        "dataset/train.jsonl": [f"{sft[1]['id']}: {short_test['qa_id']}"]}
    assert planted(layout.raft_export("train"), raft, 0, "instruction", validation_row["question"]) == {
        "exports/raft_train.jsonl": [f"{raft[0]['id']}: {validation_row['qa_id']}"]}
    inside = pt[2]["text"] + " " + test_row["question"].rstrip("?") + ", and what else matters?"
    assert planted(layout.exports_dir / PT_FILE, pt, 2, "text", inside) == {f"exports/{PT_FILE}": [f"{pt[2]['id']}: {test_row['qa_id']}"]}
    assert planted(layout.exports_dir / PT_FILE, pt, 2, "text", pt[2]["text"] + " What is agoraphobia?") == {}  # too short to count inside a text
    # A heading that is a held-out question, in a train row's provenance (its section path), is no training text.
    heading = [f"Generalized Anxiety Disorder > {test_row['question']}"]
    assert planted(layout.alpaca_split("train"), sft, 1, "section_paths", heading) == {}
    assert planted(layout.exports_dir / PT_FILE, pt, 2, "section", heading[0]) == {}
    assert planted(layout.train_preference_pairs, dpo, 1, "prompt", test_row["question"]) == {
        "reports/dpo/train_dpo.jsonl": [f"{dpo[1]['id']}: {test_row['qa_id']}"]}
    # An evaluation file offered to a trainer through the DPO folder's dataset_info.json (as an older version
    # wrote them) is a training input; the next preference_pairs writes dataset_info.json afresh, without it.
    evaluation = [preference(test_row["question"], "six months", "a week", "e1", test_row["qa_id"], "anxiety-disorders", "judged", "tuned", "base", "x")]
    write_jsonl(layout.dpo_dir / "judge_scores_dpo.jsonl", evaluation)
    info = json.loads((layout.dpo_dir / "dataset_info.json").read_text())
    (layout.dpo_dir / "dataset_info.json").write_text(json.dumps({**info, "judge_scores_dpo": {"file_name": "judge_scores_dpo.jsonl", "ranking": True}}))
    assert found() == {"reports/dpo/judge_scores_dpo.jsonl": [f"e1: {test_row['qa_id']}"]}
    with pytest.raises(Exception, match="training inputs show held-out questions .*judge_scores_dpo.jsonl"):
        refuse_held_out_questions(storage, "preferences")
    refuse_held_out_questions(storage, "dataset")  # each step reads its own inputs: SFT is not held up by a DPO file
    write_dpo(dpo, layout.dpo_dir, layout.train_preference_pairs.stem)
    assert found() == {} and set(json.loads((layout.dpo_dir / "dataset_info.json").read_text())) == {"train_dpo"}
    # A held-out dialogue's later patient turn counts too (rows store patient / clinician turns).
    dialogue = {**qa_row(chapter[3], question="I keep worrying about everything at work, is that normal?"),
                "turns": [{"role": "patient", "content": "I keep worrying about everything at work, is that normal?"},
                          {"role": "clinician", "content": "Worry that lasts and is hard to control can be an anxiety disorder."},
                          {"role": "patient", "content": "How long would it have to go on before someone calls it a disorder?"},
                          {"role": "clinician", "content": "Most days for at least six months."}]}
    held["test"].append(dialogue)
    write_jsonl(layout.dataset_rows("test"), held["test"])
    assert planted(layout.alpaca_split("train"), sft, 0, "instruction", dialogue["turns"][2]["content"]) == {
        "dataset/train.jsonl": [f"{sft[0]['id']}: {dialogue['qa_id']}"]}


def test_held_out_splits_are_drawn_per_chapter(chunk_rows, embedder):
    """Low shares leave most chapters without a held-out chunk by chance; a chapter with at least
    held_out_min_rows rows gets validation and test rows of its own all the same (Table II)."""
    from ragtune.curate.curation import rows_per_chapter

    by_chapter = with_neighbours(chunk_rows)
    vectors = {k: embedder.encode([r["question"] for r in v]) for k, v in by_chapter.items()}
    chunks = {c["chunk_id"]: c for c in chunk_rows}

    def table(**settings) -> dict[str, dict]:
        result = curate(by_chapter, vectors, {}, CurationSettings(test_fraction=0.03, validation_fraction=0.03, **settings), DedupSettings(), chunks)
        return {r["chapter_key"]: r for r in rows_per_chapter(result.splits)}

    per_chapter = table(held_out_min_rows=7)  # the handbook's chapters hold 7 to 10 chunks, one row each here
    large = [k for k, v in by_chapter.items() if len(v) >= 7]
    assert len(large) == 6
    assert all(per_chapter[k]["validation"] >= 1 and per_chapter[k]["test"] >= 1 and per_chapter[k]["train"] >= 1 for k in large), per_chapter
    drawn_as_one = table(held_out_min_rows=10**6)  # no chapter is large: the shares alone decide
    assert sum(drawn_as_one[k]["validation"] == 0 or drawn_as_one[k]["test"] == 0 for k in large) >= 3, drawn_as_one


def _curated_again_with_a_test_dialogue(chunk_rows, embedder, second_question, spans_from_train=False):
    """(first train row, first curation, second curation): the second after the first test row became a
    dialogue whose second patient turn is second_question (or, given None, the first train row's question)
    and whose second reply is the first train row's answer (its spans added when spans_from_train)."""
    by_chapter = with_neighbours(chunk_rows)
    vectors = {k: embedder.encode([r["question"] for r in v]) for k, v in by_chapter.items()}
    chunks = {c["chunk_id"]: c for c in chunk_rows}
    settings = CurationSettings(test_fraction=0.15, validation_fraction=0.1)
    first = curate(by_chapter, vectors, {}, settings, DedupSettings(), chunks)
    train_row = first.train[0]
    test_rows = [dict(r) for r in first.frozen["test"].rows]
    test_rows[0]["turns"] = [{"role": "patient", "content": test_rows[0]["question"]}, {"role": "clinician", "content": test_rows[0]["answer"]},
                             {"role": "patient", "content": second_question or train_row["question"]},
                             {"role": "clinician", "content": train_row["answer"]}]
    if spans_from_train:
        test_rows[0]["supporting_spans"] = list(test_rows[0]["supporting_spans"]) + list(train_row["supporting_spans"])
    names = ("validation", "test")
    frozen = load_frozen({n: first.frozen[n].manifest() for n in names}, {"validation": first.frozen["validation"].rows, "test": test_rows},
                         {n: first.frozen[n].vectors for n in names})
    return train_row, first, curate(by_chapter, vectors, {}, settings, DedupSettings(), chunks, frozen)


def test_a_train_row_asking_a_held_out_dialogues_later_question_is_withheld(chunk_rows, embedder):
    """Dialogues reuse the chapter's questions: a test dialogue whose second patient turn is a train
    row's question word for word takes that row out of train (the question-level dedup compares first turns)."""
    train_row, first, second = _curated_again_with_a_test_dialogue(chunk_rows, embedder, None)
    assert {r["qa_id"]: r["removed_by"] for r in second.removed}[train_row["qa_id"]] == "split:asks_a_held_out_question"
    assert len(second.train) == len(first.train) - 1


def test_a_held_out_dialogues_later_answer_seals_the_chunk_it_is_cut_from(chunk_rows, embedder):
    """A held-out row holds out every chunk its answer is cut from, not only the one it was drawn by: a
    test dialogue's second reply, cut from a passage train rows answer from, takes those rows out of
    train (before, the passage stayed train-side and the PT corpus showed it under its heading)."""
    train_row, _, second = _curated_again_with_a_test_dialogue(chunk_rows, embedder, "And what would help me with that, in your view?",
                                                               spans_from_train=True)
    cut_from = {s["chunk_id"] for s in train_row["supporting_spans"]}
    assert {r["qa_id"]: r["removed_by"] for r in second.removed}[train_row["qa_id"]].startswith("split:")
    assert cut_from <= second.sealed["train"]
    assert not any(set(r["chunk_ids"]) & cut_from for r in second.train)


def test_a_chapter_whose_source_left_the_collection_retires_its_rows(chunk_rows, embedder):
    """A retired chapter's rows, new and frozen held-out ones alike, leave every split on the next curation,
    each kept in `removed` with its reason; the other chapters and the frozen record are untouched."""
    from ragtune.curate.curation import RETIRED_WHY
    from ragtune.curate.dataset_card import retired_section

    by_chapter = with_neighbours(chunk_rows)
    vectors = {k: embedder.encode([r["question"] for r in v]) for k, v in by_chapter.items()}
    chunks = {c["chunk_id"]: c for c in chunk_rows}
    settings = CurationSettings(test_fraction=0.15, validation_fraction=0.1)
    first = curate(by_chapter, vectors, {}, settings, DedupSettings(), chunks)
    gone = first.splits["test"][0]["chapter_key"]
    frozen = load_frozen({n: first.frozen[n].manifest() for n in ("validation", "test")}, {n: first.frozen[n].rows for n in ("validation", "test")},
                         {n: first.frozen[n].vectors for n in ("validation", "test")})
    second = curate(by_chapter, vectors, {}, settings, DedupSettings(), chunks, frozen, retired={gone: RETIRED_WHY})
    kept = [r for rows in second.splits.values() for r in rows]
    assert kept and not [r for r in kept if r["chapter_key"] == gone]
    before = [r["qa_id"] for rows in first.splits.values() for r in rows if r["chapter_key"] == gone]
    retired = {r["qa_id"] for r in second.removed if r["removed_by"] == "retired"}
    assert set(before) <= retired and any(r["qa_id"] in retired for r in first.held_out_rows)
    assert {r["chapter_key"] for r in second.removed if r["removed_by"] == "retired"} == {gone}
    others = {r["qa_id"] for rows in first.splits.values() for r in rows if r["chapter_key"] != gone}
    assert others == {r["qa_id"] for r in kept}  # nothing else moved
    assert second.frozen["test"].sha256 == first.frozen["test"].sha256
    assert second.retired == {gone: {"why": RETIRED_WHY, "rows_removed": len(retired)}}
    assert gone not in {f["chapter_key"] for f in second.funnel}
    card = "\n".join(retired_section(second.retired))
    assert f"`{gone}`: {len(retired)} rows" in card and "removed.jsonl" in card


def test_an_excluded_task_style_leaves_every_split(chunk_rows, embedder):
    """exclude_tasks takes a style's rows, new and frozen held-out ones alike, out of every split, each kept
    in `removed` as task_excluded; the other rows stay where they were. A misspelt style raises."""
    by_chapter = with_neighbours(chunk_rows)
    for rows in by_chapter.values():
        for n, row in enumerate(rows):
            row["task"] = "treatment_management" if n % 2 else "factual_recall"
    vectors = {k: embedder.encode([r["question"] for r in v]) for k, v in by_chapter.items()}
    chunks = {c["chunk_id"]: c for c in chunk_rows}
    first = curate(by_chapter, vectors, {}, CurationSettings(), DedupSettings(), chunks)
    assert any(r["task"] == "treatment_management" for r in first.held_out_rows)
    frozen = load_frozen({n: first.frozen[n].manifest() for n in ("validation", "test")}, {n: first.frozen[n].rows for n in ("validation", "test")},
                         {n: first.frozen[n].vectors for n in ("validation", "test")})
    second = curate(by_chapter, vectors, {}, CurationSettings(exclude_tasks=["treatment_management"]), DedupSettings(), chunks, frozen)
    kept = [r for rows in second.splits.values() for r in rows]
    before = [r for rows in first.splits.values() for r in rows]
    assert kept and {r["task"] for r in kept} == {"factual_recall"}
    excluded = {r["qa_id"] for r in second.removed if r["removed_by"] == "task_excluded"}
    assert excluded >= {r["qa_id"] for r in before if r["task"] == "treatment_management"}
    assert {r["qa_id"] for r in kept} == {r["qa_id"] for r in before if r["task"] == "factual_recall"}
    assert second.frozen["test"].sha256 == first.frozen["test"].sha256
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['counseling_dialogue'\]"):
        CurationSettings(exclude_tasks=["counseling_dialogue"])


def test_validation_never_shows_a_chunk_a_test_answer_is_cut_from(chunk_rows, embedder):
    """A test row holds out every chunk its answer is cut from (held_out_chunk_ids), so validation must not
    show one either, even when the draw froze them in one run: on the bench's first freeze (2026-12-07) two
    NIMH schizophrenia validation rows kept in their evidence a chunk a test row answered from, and the
    blocking no_split_leakage check stopped the run."""
    from ragtune.curate.curation import held_out_chunk_ids, held_out_text, shown_chunks

    by_chapter = with_neighbours(chunk_rows)
    vectors = {k: embedder.encode([r["question"] for r in v]) for k, v in by_chapter.items()}
    chunks = {c["chunk_id"]: c for c in chunk_rows}
    settings = CurationSettings(test_fraction=0.15, validation_fraction=0.1)
    first = curate(by_chapter, vectors, {}, settings, DedupSettings(), chunks)
    validation_ids = {r["qa_id"] for r in first.splits["validation"]}
    test_ids = {r["qa_id"] for r in first.splits["test"]}
    # Each test row's answer now also cuts from a passage another chapter's validation row carries as retrieved
    # evidence (of its own chapter, the draw would hold fewer test chunks to leave the chapter validation and train).
    carried = [e["chunk_id"] for r in first.splits["validation"] for e in r["evidence"] if e["chunk_id"] != r["chunk_ids"][0]]
    assert carried
    for rows in by_chapter.values():
        for row in rows:
            if row["qa_id"] in test_ids:
                row["supporting_spans"] = list(row["supporting_spans"]) + [{"chunk_id": c, "start": 0, "end": 5} for c in carried
                                                                           if chunks[c]["chapter_key"] != row["chapter_key"]]
    again = curate(by_chapter, vectors, {}, settings, DedupSettings(), chunks)
    test = again.frozen["test"]
    # The draw counts what test seals in every chapter now, so it may hold fewer test chunks; some test row still
    # cuts its answer from a carried passage of another chapter.
    cut_from_carried = {s["chunk_id"] for r in test.rows for s in r["supporting_spans"]} & set(carried)
    assert cut_from_carried and validation_ids
    sealed = held_out_text(held_out_chunk_ids(test.held_out_chunks, test.rows), chunks, test.rows).sealed(chunks)
    assert cut_from_carried <= sealed
    assert again.splits["validation"] and not [r["qa_id"] for r in again.splits["validation"] if shown_chunks(r) & sealed]


def test_a_row_that_asks_a_seed_task_leaves_every_split_even_a_frozen_test_row(chunk_rows, embedder):
    """Self-instruct's seeds are the user's examples: a row asking one (word for word or nearly) is removed as
    dedup:seed from every split, a frozen test row too, so a seed never becomes a held-out question."""
    by_chapter = with_neighbours(chunk_rows)
    vectors = {k: embedder.encode([r["question"] for r in v]) for k, v in by_chapter.items()}
    chunks = {c["chunk_id"]: c for c in chunk_rows}
    first = curate(by_chapter, vectors, {}, CurationSettings(), DedupSettings(), chunks)
    planted = first.splits["test"][0]
    trained = first.splits["train"][0]
    frozen = load_frozen({n: first.frozen[n].manifest() for n in ("validation", "test")}, {n: first.frozen[n].rows for n in ("validation", "test")},
                         {n: first.frozen[n].vectors for n in ("validation", "test")})
    seeds = [planted["question"].upper().rstrip("?"), "Please " + trained["question"], "What is the capital of France?"]
    second = curate(by_chapter, vectors, {}, CurationSettings(), DedupSettings(), chunks, frozen, seeds=seeds)
    kept = {r["qa_id"] for rows in second.splits.values() for r in rows}
    copies = {r["qa_id"]: r["seed"] for r in second.removed if r["removed_by"] == "dedup:seed"}
    assert copies == {planted["qa_id"]: seeds[0], trained["qa_id"]: seeds[1]}
    assert kept == {r["qa_id"] for rows in first.splits.values() for r in rows} - set(copies)
    assert second.frozen["test"].sha256 == first.frozen["test"].sha256  # the record stays; the row leaves what is shown


def test_a_small_chapter_keeps_a_chunk_for_validation_and_one_for_train_whatever_test_seals(chunk_rows, embedder):
    """Four chunks with a row each, most below test_fraction, and a test row that answers from a second chunk
    too (as a dialogue's second reply does): test takes what leaves two chunks open, so validation and train
    both get one (test once took two of three and sealed the rest: CI of stop 46)."""
    from ragtune.curate.curation import chunk_bucket

    settings = CurationSettings(test_fraction=0.9, validation_fraction=0.05)
    chapter = sorted((c for c in chunk_rows if c["chapter_key"] == "anxiety-disorders"), key=lambda c: chunk_bucket(c["chunk_id"], settings.seed))[:4]
    assert sum(chunk_bucket(c["chunk_id"], settings.seed) < settings.test_fraction for c in chapter) >= 3
    first, second = chapter[0], chapter[1]
    rows = [qa_row(first, answer=" ".join(key_sentences(first) + key_sentences(second)), extra_evidence=(second,))] + [qa_row(c) for c in chapter[1:]]
    assert {s["chunk_id"] for s in rows[0]["supporting_spans"]} == {first["chunk_id"], second["chunk_id"]}
    by_chapter = {"anxiety-disorders": rows}
    result = curate(by_chapter, {"anxiety-disorders": embedder.encode([r["question"] for r in rows])}, {}, settings, DedupSettings(),
                    {c["chunk_id"]: c for c in chunk_rows})
    assert result.splits["test"] and result.splits["validation"] and result.train, {k: len(v) for k, v in result.splits.items()}


def far_apart(chunk_rows: list[dict], settings: CurationSettings, key: str, n: int) -> list[dict]:
    """n chunks of a chapter in bucket order, each below test_fraction and of another section (no neighbour seals another)."""
    from ragtune.curate.curation import chunk_bucket

    found: list[dict] = []
    for chunk in sorted((c for c in chunk_rows if c["chapter_key"] == key), key=lambda c: chunk_bucket(c["chunk_id"], settings.seed)):
        if chunk_bucket(chunk["chunk_id"], settings.seed) < settings.test_fraction and all(chunk["section_path"] != f["section_path"] for f in found):
            found.append(chunk)
    return found[:n]


def test_a_row_that_answers_from_another_chapter_leaves_that_chapter_a_chunk_for_train(chunk_rows, embedder):
    """A multi-hop row of the anxiety chapter cuts part of its answer from a depressive chunk; held out, it seals
    that chunk. The depressive chapter's own draw must count it: drawing its other chunk too would leave it nothing
    to train on (the e2e run with multi-hop on: an OCD row sealed away the anxiety chapter's only dialogue)."""
    settings = CurationSettings(test_fraction=0.9, validation_fraction=0.05)

    anxiety, depressive = far_apart(chunk_rows, settings, "anxiety-disorders", 3), far_apart(chunk_rows, settings, "depressive-disorders", 2)
    assert len(anxiety) == 3 and len(depressive) == 2
    joined = qa_row(anxiety[0], answer=" ".join(key_sentences(anxiety[0]) + key_sentences(depressive[1])), extra_evidence=(depressive[1],))
    assert {s["chunk_id"] for s in joined["supporting_spans"]} == {anxiety[0]["chunk_id"], depressive[1]["chunk_id"]}
    by_chapter = {"anxiety-disorders": [joined] + [qa_row(c) for c in anxiety[1:]], "depressive-disorders": [qa_row(c) for c in depressive]}
    vectors = {k: embedder.encode([r["question"] for r in v]) for k, v in by_chapter.items()}
    result = curate(by_chapter, vectors, {}, settings, DedupSettings(), {c["chunk_id"]: c for c in chunk_rows})
    assert joined["qa_id"] in {r["qa_id"] for r in result.splits["test"]}  # the joined row is held out, sealing depressive[1]
    assert {r["chapter_key"] for r in result.train} == {"anxiety-disorders", "depressive-disorders"}, [r["chunk_ids"][0] for r in result.train]


def test_a_held_out_draw_never_seals_away_the_last_train_row_of_a_task_style(chunk_rows, embedder):
    """The run's only dialogue sits on a depressive chunk an anxiety row also answers from (a multi-hop row): holding
    that row out would seal the dialogue out of train (the e2e run with multi-hop on, validation's draw), so the
    draw takes another chunk and the dialogue trains."""
    settings = CurationSettings(test_fraction=0.9, validation_fraction=0.05)
    anxiety, depressive = far_apart(chunk_rows, settings, "anxiety-disorders", 3), far_apart(chunk_rows, settings, "depressive-disorders", 2)
    joined = qa_row(anxiety[0], answer=" ".join(key_sentences(anxiety[0]) + key_sentences(depressive[1])), extra_evidence=(depressive[1],))
    dialogue = {**qa_row(depressive[1]), "task": "counselling_dialogue"}
    by_chapter = {"anxiety-disorders": [joined] + [qa_row(c) for c in anxiety[1:]], "depressive-disorders": [qa_row(depressive[0]), dialogue]}
    vectors = {k: embedder.encode([r["question"] for r in v]) for k, v in by_chapter.items()}
    result = curate(by_chapter, vectors, {}, settings, DedupSettings(), {c["chunk_id"]: c for c in chunk_rows})
    assert dialogue["qa_id"] in {r["qa_id"] for r in result.train}, {k: [r["task"] for r in v] for k, v in result.splits.items()}
    assert joined["qa_id"] in {r["qa_id"] for r in result.train} and result.splits["test"]


def test_a_small_chapter_whose_styles_have_a_row_each_still_gets_every_split(chunk_rows, embedder):
    """Every held-out draw would seal some style's last train row here (four rows, four styles): the forced draw then
    lets a style go to a held-out split rather than leave the split empty (the stop test's anxiety run: validation
    was left with nothing and curation failed)."""
    from ragtune.curate.curation import chunk_bucket

    settings = CurationSettings(test_fraction=0.15, validation_fraction=0.1)
    chapter = sorted((c for c in chunk_rows if c["chapter_key"] == "anxiety-disorders"), key=lambda c: chunk_bucket(c["chunk_id"], settings.seed))
    chapter = [c for c in chapter if chunk_bucket(c["chunk_id"], settings.seed) >= 0.25][:4]  # no hash pick: every draw is forced
    styles = ["factual_recall", "clinical_vignette", "treatment_management", "counselling_dialogue"]
    rows = [{**qa_row(c), "task": style} for c, style in zip(chapter, styles)]
    result = curate({"anxiety-disorders": rows}, {"anxiety-disorders": embedder.encode([r["question"] for r in rows])}, {}, settings,
                    DedupSettings(), {c["chunk_id"]: c for c in chunk_rows})
    assert result.splits["test"] and result.splits["validation"] and result.train, {k: [r["task"] for r in v] for k, v in result.splits.items()}
