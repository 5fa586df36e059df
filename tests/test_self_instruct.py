"""Self-instruct from seed tasks: seed files read (and bad ones named), proposals that copy a seed dropped,
and questions grown by the real embedded model answered only with spans of the passages they retrieve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.generate.self_instruct import (
    SeedFileError, SeedTask, SelfInstructSettings, grow_chapter, load_seed_tasks, near_seed, novel_questions, rouge_l, seed_file,
)

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "sample_handbook" / "seeds"


def test_the_shipped_seed_files_read_as_alpaca_tasks_for_handbook_chapters(handbook_document):
    keys = {c.chapter_key for c in handbook_document.chapters}
    for key in ("depressive-disorders", "anxiety-disorders"):
        assert key in keys and seed_file(SEEDS, key) == SEEDS / f"{key}.jsonl"
        tasks = load_seed_tasks(SEEDS / f"{key}.jsonl")
        assert len(tasks) >= 6 and all(t.instruction.endswith(("?", ".")) and t.output for t in tasks)
    zh = load_seed_tasks(SEEDS / "yi-yu-zhang-ai.jsonl")
    assert len(zh) >= 4 and all("？" in t.instruction for t in zh)
    assert seed_file(SEEDS, "bipolar-and-related-disorders") is None  # a chapter without seeds grows nothing


def test_a_bad_seed_file_is_named_with_its_line_and_the_shape_to_write(tmp_path):
    broken = tmp_path / "anxiety.jsonl"
    broken.write_text('{"instruction": "How long must worry last?", "output": "Six months."}\n\n{"instruction": "What is panic?"\n')
    with pytest.raises(SeedFileError, match=r"anxiety\.jsonl:3: not a JSON object .*\"instruction\""):
        load_seed_tasks(broken)
    broken.write_text('{"input": "a case", "output": "x"}\n')
    with pytest.raises(SeedFileError, match=r"anxiety\.jsonl line 1: no instruction"):
        load_seed_tasks(broken)
    listed = tmp_path / "panic.json"
    listed.write_text(json.dumps([{"instruction": "Name a panic symptom.", "input": "", "output": "Palpitations."}, {"instruction": 3}]))
    with pytest.raises(SeedFileError, match=r"panic\.json item 2: no instruction"):
        load_seed_tasks(listed)
    listed.write_text(json.dumps([{"instruction": "  Name a   panic symptom. ", "output": "Palpitations."}]))
    assert load_seed_tasks(listed) == [SeedTask("Name a panic symptom.", "", "Palpitations.")]
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(SeedFileError, match="no seed tasks"):
        load_seed_tasks(tmp_path / "empty.jsonl")


def test_a_proposal_that_copies_or_wraps_a_seed_is_not_new():
    assert rouge_l("What is panic disorder?", "what is panic disorder") == 1.0
    assert rouge_l("What is mania?", "What is hypomania?") == pytest.approx(2 / 3)  # 2 of 3 words in order, both ways
    seeds = [SeedTask("How long must low mood last before a major depressive episode can be diagnosed?")]
    wrapped = "What a clinician in that clinic would ask: How long must low mood last before a major depressive episode can be diagnosed?"
    assert rouge_l(wrapped, seeds[0].instruction) == 1.0  # the 135M model's copy: every seed word, in order
    new = "Which medicines can trigger a manic switch in bipolar depression?"
    near = "How long must low mood last before a major depressive episode is diagnosed?"
    reworded = "How long should low mood last to diagnose a major depressive episode?"  # ROUGE-L 0.62: new by Alpaca's measure
    assert novel_questions([wrapped, new, new.lower(), near, reworded], seeds, 0.7) == [new, reworded]
    assert near_seed("How is generalized anxiety disorder diagnosed?",  # most of its words are in the seed, in order: another question
                     ["How long must worry persist for generalized anxiety disorder to be diagnosed?"]) is None
    assert near_seed("诊断重性抑郁发作，情绪低落要持续多久？", ["诊断重性抑郁发作时，情绪低落需要持续多久？"]) is not None
    assert near_seed("惊恐发作有哪些躯体表现？", ["诊断重性抑郁发作时，情绪低落需要持续多久？"]) is None


def test_the_embedded_model_mostly_copies_its_seeds_and_no_copy_becomes_a_question(tmp_path, embedded_llm, handbook_document, handbook_index, embedder):
    """SmolLM2-135M given three seeds writes them back (read 2026-12-07: 10 of 10 proposals were seeds, some
    twice): every copy is dropped before retrieval, so no seed comes back as a row."""
    chapter = next(c for c in handbook_document.chapters if c.chapter_key == "anxiety-disorders")
    seeds = load_seed_tasks(SEEDS / "anxiety-disorders.jsonl")
    result = grow_chapter(seeds, chapter.chapter_key, chapter.title, "en", handbook_index, embedder, embedded_llm(tmp_path),
                          SelfInstructSettings(calls=2, per_call=3))
    assert result.proposed > len(result.novel)
    assert all(near_seed(q, [s.instruction for s in seeds]) is None for q in result.novel)
    assert {r["question"] for r in result.qa_pairs} <= set(result.novel)


@pytest.mark.slow
def test_grown_questions_are_answered_only_with_spans_of_their_own_passages_and_a_rerun_pays_nothing(
        tmp_path, handbook_document, handbook_index, embedder):
    """The 1.5B local model grows new questions from the depressive seeds; each kept row's answer is an
    answer unit of a passage its question retrieved, cut with exact offsets; the rerun is all cache."""
    from resources.llm import local_client

    chapter = next(c for c in handbook_document.chapters if c.chapter_key == "depressive-disorders")
    seeds = load_seed_tasks(SEEDS / "depressive-disorders.jsonl")
    settings = SelfInstructSettings(calls=1, per_call=3)
    grow = lambda: grow_chapter(seeds, chapter.chapter_key, chapter.title, "en", handbook_index, embedder,  # noqa: E731
                                local_client("qwen2.5-coder-1.5b", tmp_path), settings)
    result = grow()
    assert result.proposed >= len(result.novel) >= 2 and not result.failures
    assert len(result.qa_pairs) + len(result.unanswered) == len(result.novel) and result.qa_pairs
    for row in result.qa_pairs:
        assert row["task"] == "self_instruct" and row["question"] in result.novel and near_seed(row["question"], [s.instruction for s in seeds]) is None
        chunks = {e["chunk_id"]: e["text"] for e in row["evidence"]}
        unit = row["answer_units"][0]
        assert unit["chunk_id"] in chunks and row["supporting_spans"]
        assert all(s["chunk_id"] == unit["chunk_id"] and chunks[s["chunk_id"]][s["start"]:s["end"]] == s["text"] for s in row["supporting_spans"])
        assert row["generation"]["question_from"] == "seed_tasks" and row["generation"]["answer_chosen_by"]["model"].startswith("llamacpp:qwen2.5")
    again = grow()
    assert again.llm_calls == 0 and again.cache_hits == result.llm_calls + result.cache_hits
    assert [r["qa_id"] for r in again.qa_pairs] == [r["qa_id"] for r in result.qa_pairs]


def test_every_failed_call_is_a_ledger_entry_with_its_raw_output(tmp_path, embedded_llm, handbook_document, handbook_index, embedder):
    chapter = next(c for c in handbook_document.chapters if c.chapter_key == "anxiety-disorders")
    seeds = load_seed_tasks(SEEDS / "anxiety-disorders.jsonl")
    cut = SelfInstructSettings(calls=2, per_call=2, max_tokens=6)  # the JSON is cut off: no call parses
    result = grow_chapter(seeds, chapter.chapter_key, chapter.title, "en", handbook_index, embedder, embedded_llm(tmp_path), cut)
    assert result.qa_pairs == [] and result.proposed == 0
    assert [f["call"] for f in result.failures] == [0, 1]
    assert all(f["stage"] == "self_instruct_propose" and f["raw"].startswith("{") and f["cache_key"] for f in result.failures)


def test_a_bad_seed_file_fails_no_step_the_chapter_goes_on_and_the_status_names_it(tmp_path):
    """seed_candidates with a broken seed file: the step succeeds with no rows, its status and metadata name the
    file, the line and the shape to write, so qa_filtered and the rest of the chapter go on."""
    import dagster as dg

    from pipeline_assets.generate import seed_candidates
    from pipeline_assets.partitions import CHAPTERS
    from resources import DataDirResource, EmbedderResource, LLMResource
    from resources.fit_judge import FitJudgeResource

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "anxiety.jsonl").write_text('{"instruction": "How long must worry last?"}\n{"instruction": "What is panic?"\n')
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CHAPTERS, ["anxiety"])
        result = dg.materialize(
            [seed_candidates], instance=instance, partition_key="anxiety",
            resources={"storage": DataDirResource(data_dir=str(tmp_path / "data")), "embedder": EmbedderResource(), "llm": LLMResource(),
                       "fit_judge": FitJudgeResource()},
            run_config={"ops": {"seed_candidates": {"config": {"seeds_dir": str(seeds)}}}},
        )
    assert result.success
    metadata = result.asset_materializations_for_node("seed_candidates")[0].metadata
    assert metadata["seeds"].value == 0 and "anxiety.jsonl:2: not a JSON object" in metadata["error"].value
    status = json.loads((tmp_path / "data" / "qa" / "seeded" / "anxiety.status.json").read_text())
    assert status["answered"] == 0 and '{"instruction": "...", "input": "...", "output": "..."}' in status["error"]
    assert (tmp_path / "data" / "qa" / "seeded" / "anxiety.jsonl").read_text() == ""
