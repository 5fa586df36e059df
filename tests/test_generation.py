"""Generation to depth: task packs in two languages, evidence plans, supporting spans, and the
quota loop with top-up waves on the real embedded SmolLM2 over a real FAISS index."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from ragtune.generate import answer_first, built_questions
from ragtune.generate.evidence import (
    EvidencePlan,
    EvidenceSettings,
    plan_chapter_evidence,
    task_schedule,
)
from ragtune.generate.grounding import supporting_spans
from ragtune.generate.qa_filter import FilterSettings, filter_qa
from ragtune.generate.qa_generation import (
    ChapterGeneration,
    GenerationSettings,
    _pick_rounds,
    _request,
    askable_rounds,
    generate_chapter_qa,
    parse_items,
    shortfall_message,
)
from ragtune.index.chunking import chunk_chapter
from ragtune.index.vector_index import ChunkIndex
from ragtune.ingest.text_parser import parse_markdown
from ragtune.llm.prompts import detect_language
from ragtune.tasks import TASKS, default_task_mix
from tests.conftest import chapter_of

ZH_CHAPTER = """# 焦虑障碍

## 概述

焦虑障碍的核心是过度的恐惧和担忧，并且持续时间长，影响工作和生活。广泛性焦虑障碍的患者对许多事情感到难以控制的担心，至少持续六个月。

## 治疗

认知行为治疗是首选的心理治疗。选择性五羟色胺再摄取抑制剂是常用的一线药物，需要数周才能起效。
"""


def test_task_schedule_follows_the_weights():
    schedule = task_schedule(default_task_mix())
    planned = {task: weight for task, weight in default_task_mix().items() if weight}  # self_instruct (weight 0): no rounds
    assert Counter(schedule) == Counter(planned) and set(schedule) == set(TASKS) - {"self_instruct"}
    assert schedule[:2] != ["factual_recall", "factual_recall"]  # interleaved, not blocks
    with pytest.raises(ValueError, match="unknown task"):
        task_schedule({"poetry": 1})
    with pytest.raises(ValueError, match=r"cannot plan rounds of \['self_instruct'\]: their rows are grown from seed tasks"):
        task_schedule({"factual_recall": 1, "self_instruct": 1})


def test_plan_covers_sections_and_tasks_and_differentials_reach_other_chapters(handbook_document, handbook_index, embedder):
    chapter = chapter_of(handbook_document, "anxiety-disorders")
    rounds = 3 * sum(default_task_mix().values())  # the schedule three times over
    plan = plan_chapter_evidence(chapter, handbook_index, embedder, EvidenceSettings(rounds=rounds, top_k=3))
    assert plan.language == "en" and len(plan.rounds) == rounds
    assert {r.focus for r in plan.rounds} == {s.title for s in chapter.sections if s.title != chapter.title}
    assert Counter(r.task for r in plan.rounds) == Counter({t: 3 * w for t, w in default_task_mix().items() if w})
    for planned in plan.rounds:
        others = [e for e in planned.evidence if e["chapter_key"] != "anxiety-disorders"]
        if planned.task == "multi_hop":  # a line of this chapter and the other chapter's passage (tests/test_multi_hop.py)
            assert len(planned.evidence) == 2 and len(others) == 1
            continue
        assert len(planned.evidence) == 3
        if planned.task == "differential_diagnosis":
            assert others
    again = EvidencePlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.content_sha256() == plan.content_sha256()


def test_rounds_share_evidence_in_pairs_so_the_prefix_cache_reads_passages_once(handbook_document, handbook_index, embedder):
    chapter = chapter_of(handbook_document, "anxiety-disorders")

    def shares(settings: EvidenceSettings) -> list[tuple]:
        """Rounds that take the round before's evidence itself (a repeat by chance, as of a one-chunk section, is
        another list with the same chunks)."""
        rounds = plan_chapter_evidence(chapter, handbook_index, embedder, settings).rounds
        return [(rounds[n - 1], rounds[n]) for n in range(1, len(rounds)) if rounds[n].evidence is rounds[n - 1].evidence]

    shared = shares(EvidenceSettings(rounds=30))
    assert len(shared) >= 4 and not shares(EvidenceSettings(rounds=30, rounds_per_evidence=1))
    for first, second in shared:
        # Another task, but where the schedule repeats one across its wrap (factual_recall ends and starts it).
        assert first.focus == second.focus and (first.task != second.task or first.task == task_schedule(default_task_mix())[0])
        assert not {"differential_diagnosis", "multi_hop"} & {first.task, second.task}


# A document of another field, in our own words: a lease's clauses hold none of the handbook structures.
LEASE = """# Residential Lease

## Rent

The tenant pays the monthly rent on the first working day of each month into the account the landlord names.
A payment received more than ten days late carries a fee of five percent of that month's rent.

## Repairs

The landlord keeps the roof, the walls and the heating in working order at the landlord's own cost.
The tenant reports any damage in writing within seven days of noticing it.
"""


def test_a_chapter_with_no_structure_to_ask_makes_no_call_and_says_what_to_do(tmp_path, embedder):
    path = tmp_path / "lease.md"
    path.write_text(LEASE, encoding="utf-8")
    document = parse_markdown(path)
    chapter = document.chapters[0]
    chunks = chunk_chapter(chapter, document.doc_id, embedder.tokenize)
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    plan = plan_chapter_evidence(chapter, index, embedder, EvidenceSettings(rounds=6))

    class NoCalls:  # no round asks anything, so the LLM is never reached
        def complete_many(self, requests):
            raise AssertionError("no call expected")

    settings = GenerationSettings(quota=2)
    result = generate_chapter_qa(plan, NoCalls(), settings)
    assert result.exhausted and result.rounds_used == 0 and result.rounds_without_answer == 6 and not result.qa_pairs
    message = shortfall_message(chapter.chapter_key, result, settings)
    assert "none of its 6 planned rounds" in message and "free_questions: true" in message
    assert askable_rounds(plan, GenerationSettings(free_questions=True))  # the model may write where no structure dictates
    asked = ChapterGeneration(kept=1, rounds_used=6, exhausted=True)
    assert "1 of 2 pairs kept after all 6 planned rounds" in shortfall_message("lease", asked, settings)
    assert shortfall_message("lease", ChapterGeneration(kept=2, quota_met=True), settings) is None


def test_chinese_document_gets_the_chinese_pack(tmp_path, embedder):
    path = tmp_path / "zh.md"
    path.write_text(ZH_CHAPTER, encoding="utf-8")
    document = parse_markdown(path)
    chapter = document.chapters[0]
    assert detect_language(chapter.text()) == "zh" and detect_language("Anxiety disorders (焦虑)") == "en"
    chunks = chunk_chapter(chapter, document.doc_id, embedder.tokenize)
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    plan = plan_chapter_evidence(chapter, index, embedder, EvidenceSettings(rounds=6, top_k=1))
    assert plan.language == "zh"
    request = _request(plan, plan.rounds[0], 0, 0, GenerationSettings(), answer_first.round_units(plan, 0))
    assert "只回复 JSON" in request.messages[-1]["content"] and "焦虑障碍" in request.messages[-1]["content"]
    kept = filter_qa([{"qa_id": "1", "task": "factual_recall", "question": "广泛性焦虑障碍的担心至少持续多久？",
                       "answer": "广泛性焦虑障碍的担心难以控制，至少持续六个月。", "language": "zh",
                       "evidence": [{"text": chunks[0].text, "section_path": chunks[0].section_path}]}],
                     FilterSettings()).kept
    assert len(kept) == 1  # CJK text is counted and grounded character by character


def test_dialogue_output_becomes_turns_and_malformed_output_is_an_error():
    text = json.dumps({"dialogues": [{"turns": [
        {"role": "patient", "content": "I worry about everything and cannot sleep."},
        {"role": "clinician", "content": "How long has the worrying gone on?"},
        {"role": "patient", "content": "More than half a year."},
        {"role": "clinician", "content": "Worry that lasts six months or more fits generalized anxiety disorder."}]}]})
    (item,) = parse_items("counselling_dialogue", text)
    assert item["question"].startswith("I worry") and len(item["turns"]) == 4
    with pytest.raises(ValueError, match="alternating"):
        parse_items("counselling_dialogue", json.dumps({"dialogues": [{"turns": [{"role": "clinician", "content": "Hello there."}]}]}))
    with pytest.raises(ValueError, match="malformed JSON"):
        parse_items("factual_recall", '{"pairs": [{"question": "What')


def test_supporting_spans_point_into_the_evidence():
    evidence = [{"chunk_id": "c:1", "text": "Panic attacks peak within minutes. Agoraphobia is fear of places where escape is hard."},
                {"chunk_id": "c:2", "text": "Lithium prevents manic relapse."}]
    spans = supporting_spans("Agoraphobia means fearing places where escape would be hard. Jupiter is large.", evidence)
    assert len(spans) == 1
    span = spans[0]
    assert span["chunk_id"] == "c:1" and evidence[0]["text"][span["start"]:span["end"]] == span["text"]
    assert span["text"].startswith("Agoraphobia")


def test_top_up_rounds_ask_for_what_is_missing(handbook_document, handbook_index, embedder):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "anxiety-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=20))
    kept = [{"task": plan.rounds[n].task, "focus": plan.rounds[n].focus} for n in range(5)]
    picked = _pick_rounds(plan, list(range(5, 20)), kept, 4)
    covered_tasks = Counter(k["task"] for k in kept)
    assert all(covered_tasks[plan.rounds[n].task] <= min(covered_tasks.values(), default=0) + 1 for n in picked)


def test_a_first_wave_asks_every_task_its_chapter_can_ask(handbook_document, handbook_index, embedder):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "bipolar-and-related-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=16))
    askable = askable_rounds(plan, GenerationSettings(quota=2))
    tasks = {plan.rounds[n].task for n in askable}
    assert "counselling_dialogue" in tasks  # the demo's setting: the dialogue is the plan's last round
    first = _pick_rounds(plan, askable, [], 4, first=True)
    assert {plan.rounds[n].task for n in first} == tasks  # a quota of 2 no longer leaves the dialogue unasked
    assert len(first) == max(4, len(tasks))
    later = _pick_rounds(plan, askable, [], 4)
    assert len(later) == 4 and len({plan.rounds[n].task for n in later}) == min(4, len(tasks))  # spread, not the plan's first four


def test_quota_is_reached_in_waves_or_the_chapter_is_flagged_exhausted(handbook_document, handbook_index, embedder, tmp_path, embedded_llm):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "bipolar-and-related-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=10))
    llm = embedded_llm(tmp_path)
    settings = GenerationSettings(quota=3, max_waves=3, max_tokens=160)
    result = generate_chapter_qa(plan, llm, settings)
    assert result.waves >= 2 or result.quota_met or result.exhausted  # a first wave rarely keeps enough from a 135M model
    assert result.kept == len(filter_qa(result.qa_pairs, FilterSettings()).kept)
    assert result.quota_met == (result.kept >= 3)
    assert result.exhausted == (not result.quota_met and result.rounds_used + result.rounds_without_answer == 10)
    assert sum(c["candidates"] for c in result.coverage) == len(result.qa_pairs)
    assert result.llm_calls + result.cache_hits >= result.rounds_used  # a round with no answer is never used
    for row in result.qa_pairs:
        assert row["task"] in TASKS and row["generation"]["template"] == answer_first.template_for(row["task"], row["answer_mode"], "en")
        assert row["supporting_spans"] is not None and set(row["chunk_ids"]) == {e["chunk_id"] for e in row["evidence"]}
        if row["task"] == "counselling_dialogue":
            assert row["turns"][0]["role"] == "patient"
    rerun = generate_chapter_qa(plan, embedded_llm(tmp_path), settings)
    assert rerun.llm_calls == 0 and rerun.qa_pairs == result.qa_pairs


def test_the_dialogue_schema_makes_even_the_small_model_alternate_turns(handbook_document, handbook_index, embedder, tmp_path, embedded_llm):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "anxiety-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=3, task_mix={"counselling_dialogue": 1}))
    llm = embedded_llm(tmp_path)
    abstractive = {"counselling_dialogue": "abstractive"}  # the model writes both sides (answer-first has its own test)
    result = generate_chapter_qa(plan, llm, GenerationSettings(quota=3, max_waves=1, max_tokens=160, retries=0, answer_mode=abstractive))
    assert result.qa_pairs, result.failures  # before the tuple schema, 135M wrote no valid dialogue
    for row in result.qa_pairs:
        assert [t["role"] for t in row["turns"]] == ["patient", "clinician"] * 3
        # a clinician turn ending in a question asks; the others inform and cite the spans they overlap
        acts = [t.get("act") for t in row["turns"][1::2]]
        assert acts == ["ask" if t["content"].rstrip().endswith("?") else "inform" for t in row["turns"][1::2]]
        informing = [t for t in row["turns"] if t.get("act") == "inform"]
        assert all(isinstance(t["cites"], list) for t in informing)
        # the row's question and answer: its first exchange that informs (the opening is a complaint, not what is answered)
        at = next((n for n, t in enumerate(row["turns"]) if t.get("act") == "inform"), 1)
        assert (row["question"], row["answer"]) == (row["turns"][at - 1]["content"], row["turns"][at]["content"])


def test_a_differential_line_is_asked_as_told_apart_from_the_chapters_condition(handbook_document, handbook_index, embedder):
    """The question of a differential line is dictated by its structure (built_questions.structured_question): the
    model may only choose among wordings of 'how is <line's condition> told apart from <chapter's condition>'."""
    plan = plan_chapter_evidence(chapter_of(handbook_document, "feeding-and-eating-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=12, task_mix={"differential_diagnosis": 1}))
    fixed = []
    for n, planned in enumerate(plan.rounds):
        units = answer_first.round_units(plan, n)
        pattern = built_questions.structured_question(plan, planned, units)
        if pattern:
            fixed.append((units[0].text, pattern))
            request = _request(plan, planned, n, 0, GenerationSettings(), units)
            assert request.schema["properties"]["question"]["pattern"] == pattern
    assert fixed, "the eating chapter's differential section gives differential lines"
    import re

    for text, pattern in fixed:
        head = text.split(":", 1)[0].split(". ", 1)[-1]
        named = head[0].lower() + head[1:]
        assert any(re.fullmatch(pattern[1:-1].replace("\\", ""), f"How {be} {named} told apart from an eating disorder?") for be in ("is", "are")) or \
            head[1:2].isupper()
    assert any("How are medical causes of weight loss told apart" in pattern for _, pattern in fixed)  # a plural condition takes 'are'
    assert built_questions.chapter_condition("Bipolar and Related Disorders") == "bipolar disorder"
    assert built_questions.chapter_condition("Trauma- and Stressor-Related Disorders") == "a trauma- or stressor-related disorder"


@pytest.mark.parametrize(("chapter", "other"), [("trauma-and-stressor-related-disorders", "posttraumatic stress disorder"),
                                              ("depressive-disorders", "major depression"), ("anxiety-disorders", "anxiety disorders"),
                                              ("bipolar-and-related-disorders", "bipolar disorder")])
def test_a_differential_line_is_told_apart_from_the_condition_its_lists_lead_in_names(chapter, other, handbook_document, handbook_index, embedder):
    """The demo asked the trauma chapter's lines 'told apart from a trauma- or stressor-related disorder', though
    the list is PTSD's (adjustment disorder is itself one): the lead-in's condition comes first, the title's
    only when the lead-in names none ('The clinician considers:' in the bipolar chapter)."""
    plan = plan_chapter_evidence(chapter_of(handbook_document, chapter), handbook_index, embedder,
                                 EvidenceSettings(rounds=8, task_mix={"differential_diagnosis": 1}))
    asked = [built_questions.structured_question(plan, planned, answer_first.round_units(plan, n)) for n, planned in enumerate(plan.rounds)]
    told = [q for q in asked if q and "told apart from" in q]
    assert told, f"the {chapter} chapter's differential lines give built questions"
    assert all(f"told apart from {other}|" in q for q in told), told


def test_a_vignettes_diagnosis_is_the_condition_of_the_section_its_features_come_from(handbook_document, handbook_index, embedder):
    """The demo paired 'Anorexia Nervosa' (the round's focus) with the chapter overview's definition of the whole
    group (another passage of the round): a case's features now come only from a section that names a condition,
    and its diagnosis is that section's."""
    plan = plan_chapter_evidence(chapter_of(handbook_document, "feeding-and-eating-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=16, task_mix={"clinical_vignette": 1}))
    asked = 0
    for n, planned in enumerate(plan.rounds):
        units = answer_first.round_units(plan, n)
        if not units:
            continue
        asked += 1
        section = next(e["section_path"][-1] for e in planned.evidence if e["chunk_id"] == units[0].chunk_id)
        assert answer_first.diagnosis_name(planned, units[0], plan.chapter_title) in ("Anorexia Nervosa", "Bulimia Nervosa"), section
    assert asked >= 2
    assert answer_first.section_condition("Related Disorders") == "" and answer_first.section_condition("重性抑郁发作的诊断要点") == "重性抑郁发作"


def test_a_sentence_that_defines_a_condition_is_asked_what_when_or_how_it_is():
    import re

    asked = {
        "Hoarding disorder is a lasting difficulty discarding possessions, whatever their value, leading to clutter in the home.":
            "What is hoarding disorder?",
        "Adjustment disorders are emotional or behavioural symptoms that develop within three months of an identifiable stressor.":
            "What are adjustment disorders?",
        "Panic disorder is diagnosed when attacks are recurrent and unexpected and are followed by a month of persistent worry.":
            "When is panic disorder diagnosed?",
        "Bipolar disorders are defined by episodes of abnormally elevated, expansive or irritable mood with increased energy.":
            "How are bipolar disorders defined?",
        "Cyclothymic disorder describes at least two years of many periods of hypomanic and depressive symptoms.":
            "What does cyclothymic disorder describe?",
    }
    for answer, question in asked.items():
        pattern = built_questions.definition_question(answer)
        assert pattern and re.fullmatch(pattern, question), (answer, pattern)
        assert not re.fullmatch(pattern, "What is the difference between bipolar and related disorders?")
    assert built_questions.questions_of(built_questions.definition_question(next(a for a in asked if a.startswith("Cyclothymic"))))[0] == \
        "What is cyclothymic disorder?"  # what a built row asks first
    for claim in ("Binge-eating disorder is the most common eating disorder in adults and in adolescents alike.",  # a ranking
                  "Major depressive disorder is common and often recurrent, and it is a leading cause of disability.",  # a claim
                  "Eating disorders are twice as common in women as in men and usually begin in adolescence.",
                  "Pregabalin and buspirone are further options for generalized anxiety disorder in adults who cannot take SSRIs.",
                  "Applied relaxation is an alternative for generalized anxiety disorder when therapy is not available.",
                  "Bipolar disorder is a lifelong, recurrent condition.",  # too short to define it
                  "While occasional worry and panic attacks are normal, they should not run a person's whole life.",  # a clause
                  "Hoarding disorder is a lasting difficulty discarding possessions. It leads to clutter that blocks rooms."):  # two sentences
        assert built_questions.definition_question(claim) is None, claim


def test_the_prompt_names_the_answers_people_and_a_rewrite_says_what_was_rejected(handbook_document, handbook_index, embedder):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "feeding-and-eating-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=40, task_mix={"treatment_management": 1}))
    found = None
    for n, planned in enumerate(plan.rounds):
        units = answer_first.round_units(plan, n)
        if units and units[0].text.startswith("For children and adolescents with anorexia nervosa"):
            found = (n, planned, units)
            break
    assert found, "a treatment round answers with the children's anorexia line"
    n, planned, units = found
    first = _request(plan, planned, n, 0, GenerationSettings(), units).messages[-1]["content"]
    assert "It must name children, adolescents, anorexia nervosa." in first
    rejected = '"What is the best treatment for eating disorders?" (the question is broader)'
    again = _request(plan, planned, n, 1, GenerationSettings(), units, rejected).messages[-1]["content"]
    assert again.startswith(first) and "An earlier question for this answer was rejected: " in again and "the question is broader" in again


@pytest.mark.slow
def test_a_question_that_does_not_fit_is_rewritten_once_by_the_rewriter(handbook_document, handbook_index, embedder, tmp_path, embedded_llm):
    """SmolLM2 writes, the 1.5B rewrites what broke a rule; the rewritten rows say so and come from the rewriter."""
    from resources.llm import local_client

    plan = plan_chapter_evidence(chapter_of(handbook_document, "feeding-and-eating-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=6, task_mix={"treatment_management": 1, "factual_recall": 1}))
    writer, rewriter = embedded_llm(tmp_path), local_client("qwen2.5-coder-1.5b", tmp_path)
    settings = GenerationSettings(quota=6, max_waves=1, max_tokens=80, free_questions=True)
    result = generate_chapter_qa(plan, writer, settings, rewriter=rewriter)
    rewritten = [r for r in result.qa_pairs if r["generation"]["rewrite"]]
    assert result.question_rewrites == len({r["generation"]["round"] for r in rewritten}) > 0
    assert all(r["generation"]["model"] == rewriter.model_id and r["generation"]["attempt"] == 1 for r in rewritten)
    assert all(r["generation"]["model"] == writer.model_id for r in result.qa_pairs if not r["generation"]["rewrite"])
    kept = filter_qa(result.qa_pairs, FilterSettings()).kept
    assert result.rewrites_kept == sum(r["generation"]["rewrite"] for r in kept)
    rerun = generate_chapter_qa(plan, embedded_llm(tmp_path), settings, rewriter=local_client("qwen2.5-coder-1.5b", tmp_path))
    assert rerun.llm_calls == 0 and rerun.qa_pairs == result.qa_pairs
