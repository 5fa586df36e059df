"""Chinese end to end: readable, unique partition keys for Chinese titles (the title itself stays
Chinese), the Chinese sample handbook PDF parsed with its outline, generation through the zh pack
with every kept row in Chinese, and exports that keep the characters readable."""

from __future__ import annotations

import json

import pytest

from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence
from ragtune.generate.qa_filter import FilterSettings, filter_qa
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa
from ragtune.index.chunking import chunk_chapter
from ragtune.index.vector_index import ChunkIndex
from ragtune.ingest.document import slugify
from ragtune.ingest.pdf_parser import parse_pdf
from ragtune.ingest.sources import parse_document
from ragtune.text import is_chinese
from tests.conftest import ROOT

HANDBOOK_ZH = ROOT / "sample_handbook" / "handbook_zh.pdf"


def test_titles_in_any_script_give_readable_keys():
    assert slugify("抑郁障碍") == "yi-yu-zhang-ai"
    assert slugify("2. 焦虑障碍") == "jiao-lv-zhang-ai"
    assert slugify("重性抑郁障碍") == "zhong-xing-yi-yu-zhang-ai"  # 重 read in context (zhong, not chong)
    assert slugify("双相及相关障碍（Bipolar）") == "shuang-xiang-ji-xiang-guan-zhang-ai-bipolar"
    assert slugify("Ménière's disease") == "meniere-s-disease"
    assert slugify("Тревожные расстройства") == "trevozhnye-rasstroystva"


def test_a_markdown_book_of_chinese_chapters_keeps_them_apart(tmp_path):
    path = tmp_path / "手册.md"
    path.write_text("# 抑郁障碍\n\n情绪低落持续\n至少两周。\n\n# 焦虑障碍\n\n担心难以控制。\n\n# 抑郁 障碍\n\n另一章。\n\n# 抑郁障碍\n\n同名的一章。\n",
                    encoding="utf-8")
    document = parse_document(path)
    keys = [c.chapter_key for c in document.chapters]
    assert [c.title for c in document.chapters] == ["抑郁障碍", "焦虑障碍", "抑郁 障碍", "抑郁障碍"]
    assert keys[:2] == ["yi-yu-zhang-ai", "jiao-lv-zhang-ai"] and len(set(keys)) == 4
    assert keys[2].startswith("yi-yu-zhang-ai-") and keys[3].startswith("yi-yu-zhang-ai-")
    assert [c.chapter_key for c in parse_document(path).chapters] == keys  # stable across parses
    assert document.doc_id.startswith("shou-ce-")
    assert document.chapters[0].text().endswith("情绪低落持续至少两周。")  # a wrapped Chinese line joins without a space


def test_a_chinese_statement_is_asked_as_what_its_subject_is_and_question_words_need_no_answer():
    import re

    from ragtune.generate.built_questions import statement_question_zh
    from ragtune.generate.row_rules import uncovered_terms

    pattern = statement_question_zh("抑郁障碍的共同核心是持续的情绪低落、空虚或易激惹。")
    assert re.fullmatch(pattern, "抑郁障碍的共同核心是什么？") and re.fullmatch(pattern, "什么是抑郁障碍的共同核心？")
    assert not re.fullmatch(pattern, "抑郁障碍是什么？")
    assert re.fullmatch(statement_question_zh("常见的不良反应包括恶心、头痛和失眠。"), "常见的不良反应包括哪些？")
    # The handbook's CBT line was asked what CBT is and answered by its role (2026-12-06): a ranked treatment is asked for.
    ranked = statement_question_zh("认知行为治疗是多数焦虑障碍的首选心理治疗，其中的暴露练习帮助患者逐步面对所回避的情境。")
    assert ranked == "^(多数焦虑障碍的首选心理治疗是什么)？$"
    for pointer_or_not_one in ("这一类别包括重性抑郁障碍和持续性抑郁障碍。", "这类药物的不良反应包括恶心和失眠。", "以下是为教学编写的摘要，列出要点。",
                               "焦虑障碍是最常见的精神障碍之一。", "惊恐发作是突然的恐惧。它在几分钟内达到高峰。", "症状缓解后应继续服药至少六个月。"):
        assert statement_question_zh(pointer_or_not_one) is None, pointer_or_not_one
    answer = "惊恐发作是突然出现的强烈恐惧或不适，在几分钟内达到高峰。"
    row = {"answer": answer, "language": "zh", "task": "factual_recall"}
    assert uncovered_terms({**row, "question": "什么是惊恐发作？"}) == []  # 什么 and its seam 么是 are how it asks
    assert uncovered_terms({**row, "question": "惊恐发作多久达到高峰？"}) == []
    assert uncovered_terms({**row, "question": "情况诊断抑郁？"}) == ["情况", "况诊", "诊断", "断抑", "抑郁"]


def test_a_chinese_question_asks_with_a_question_word_and_is_no_instruction():
    """Rows the 135M model wrote for the Chinese handbook (read 2026-12-05): strings of the chapter's words with a
    question mark, and the prompt's own instruction."""
    from ragtune.generate.row_rules import not_a_question

    row = {"language": "zh", "task": "factual_recall", "answer": "本人难以控制这种担忧。"}
    assert "no question word" in not_a_question({**row, "question": "焦虑障碍，广泛性？"})
    assert "instruction" in not_a_question({**row, "question": "请写一个关于重性抑郁发作的问题？"})
    for asked in ("焦虑障碍的共同特征是什么？", "广泛性焦虑障碍的担心需要持续多久？", "担忧难以控制吗？", "惊恐发作有哪些表现？"):
        assert not_a_question({**row, "question": asked}) is None, asked


@pytest.fixture(scope="module")
def handbook_zh():
    return parse_pdf(HANDBOOK_ZH)


def test_the_chinese_handbook_parses_with_its_outline(handbook_zh):
    assert handbook_zh.title == "常见精神障碍临床手册" and not handbook_zh.ocr_pages
    assert [(c.chapter_key, c.title) for c in handbook_zh.chapters] == [("yi-yu-zhang-ai", "抑郁障碍"), ("jiao-lv-zhang-ai", "焦虑障碍")]
    for chapter in handbook_zh.chapters:
        assert len(chapter.sections) >= 3 and all(s.section_path[0] == chapter.title for s in chapter.sections)
        assert all(is_chinese(s.title) for s in chapter.sections)
        lettered = [b for s in chapter.sections for b in s.blocks if b.kind == "list_item" and b.label == "A"]
        assert lettered and is_chinese(lettered[0].text)
    text = handbook_zh.chapters[0].text()
    assert "至少两周" in text and "ragtune 示例手册" not in text  # the running header is dropped
    assert "失去兴趣和愉快感" in text  # wrapped at 兴趣|和 in the PDF: Chinese lines join without a space
    table = next(b for s in handbook_zh.chapters[0].sections for b in s.blocks if b.kind == "table")
    assert table.rows[0] == ["严重程度", "典型表现", "首选措施"] and table.rows[1][1] == "症状刚达到诊断标准，功能受影响较小"


@pytest.mark.slow
def test_a_chinese_chapter_is_generated_in_chinese_and_wrong_language_rows_are_counted(handbook_zh, embedder, tmp_path, embedded_llm):
    chapter = handbook_zh.chapters[0]
    chunks = chunk_chapter(chapter, handbook_zh.doc_id, embedder.tokenize)
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    plan = plan_chapter_evidence(chapter, index, embedder, EvidenceSettings(rounds=8))
    assert plan.language == "zh"
    result = generate_chapter_qa(plan, embedded_llm(tmp_path), GenerationSettings(quota=3, max_waves=2, max_tokens=160))
    assert all(row["generation"]["template"].startswith("zh/") for row in result.qa_pairs)
    filtered = filter_qa(result.qa_pairs, FilterSettings())
    assert filtered.kept, filtered.removed  # the extractive answers are Chinese sentences of the chapter
    for row in filtered.kept:
        assert row["language"] == "zh" and is_chinese(row["question"]) and is_chinese(row["answer"])
    english = [dict(row, qa_id=f"{row['qa_id']}-en", answer="Low mood lasting at least two weeks.") for row in filtered.kept]
    again = filter_qa(filtered.kept + english, FilterSettings())
    assert len(again.kept) == len(filtered.kept) and again.removed["wrong_language"] == len(english)


def test_exports_and_the_card_keep_chinese_readable(tmp_path):
    from ragtune.curate.dataset_card import render_card
    from ragtune.curate.exports import write_exports

    row = {"qa_id": "zh-1", "chapter_key": "yi-yu-zhang-ai", "chapter_title": "抑郁障碍", "task": "factual_recall", "language": "zh",
           "question": "抑郁发作的核心症状需要持续多久？", "answer": "情绪低落和兴趣减退持续至少两周。",
           "evidence": [{"chunk_id": "c1", "text": "抑郁发作的核心症状是情绪低落和兴趣减退，持续至少两周。", "doc_id": "handbook-zh-1",
                         "section_path": ["抑郁障碍", "诊断要点"], "pages": [2]}], "chunk_ids": ["c1"]}
    write_exports(tmp_path, {"train": [row], "validation": [], "test": []})
    written = {path.name: path.read_text(encoding="utf-8") for path in tmp_path.glob("*_train.jsonl")}
    assert set(written) == {"alpaca_train.jsonl", "sharegpt_train.jsonl", "messages_train.jsonl"}
    for name, text in written.items():
        assert "\\u" not in text and "情绪低落和兴趣减退持续至少两周" in text, name
    assert json.loads(written["alpaca_train.jsonl"])["output"] == row["answer"]
    card = render_card(
        name="中文示例", counts=[{"chapter_key": "yi-yu-zhang-ai", "train": 1, "validation": 0, "test": 0, "total": 1}], funnel=[],
        dedup_counts=[], removed=[], rows=[row], chart_file="rows_per_chapter.png", files=["alpaca_train.jsonl"], languages=["zh"],
        models={"generator": "m", "judge": "j"}, settings={"chapter": "抑郁障碍"}, split_sha256={"validation": "v", "test": "t"})
    assert "\\u" not in card and '"chapter": "抑郁障碍"' in card and json.loads(card.split("---\n")[1])["language"] == ["zh"]


def test_a_chinese_unanswerable_round_borrows_a_built_question_about_a_condition_its_passages_never_write(handbook_zh, embedder):
    from ragtune.generate import answer_first, built_questions
    from ragtune.generate.row_rules import first_broken_rule

    chunks = [c for chapter in handbook_zh.chapters for c in chunk_chapter(chapter, handbook_zh.doc_id, embedder.tokenize)]
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    plan = plan_chapter_evidence(handbook_zh.chapters[1], index, embedder, EvidenceSettings(rounds=16, task_mix={"unanswerable": 1, "factual_recall": 1}))
    asked = []
    for planned in plan.rounds:
        if planned.task != "unanswerable" or not (pattern := built_questions.structured_question(plan, planned, [])):
            continue
        (question,) = built_questions.questions_of(pattern)
        condition = built_questions.CONDITION_ZH.search(question).group(0)
        own = condition[:-2] if condition.endswith(("障碍", "发作")) else condition[:-1]  # 惊恐 of 惊恐发作
        assert question.endswith("？") and all(own not in e["text"] for e in planned.evidence), (question, condition)
        answer = answer_first.UNANSWERABLE_ANSWER["zh"].format(topic=answer_first.passage_topic(plan, planned))
        row = {"task": "unanswerable", "question": question, "answer": answer, "evidence": planned.evidence, "language": "zh"}
        assert first_broken_rule(row) is None, (question, first_broken_rule(row))
        asked.append(question)
    assert asked, "the anxiety chapter's rounds borrow questions about conditions of the depression chapter"
