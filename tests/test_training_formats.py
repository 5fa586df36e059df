"""The training ladder's other data: the continued-pretraining corpus of the handbook's own text
(split-respecting, with section paths and pages) and counselling dialogues in the input/target
form, both read back by LLaMA-Factory's own converters and by the Hugging Face loaders."""

from __future__ import annotations

import json
import types

import pytest

from ragtune.curate.curation import held_out_text
from ragtune.curate.exports import write_exports
from ragtune.curate.leakage import HeldOutQuestions
from ragtune.curate.pt_corpus import pt_corpus, write_pt_corpus
from ragtune.index.chunking import render_block
from ragtune.ingest.sources import collect_chapter
from tests.test_curation import load_llamafactory_converters

RUNNING_HEADER = "ragtune sample handbook - for software demonstration only"  # sample_handbook/build_pdf.py


def converted(out, entry: str, tmp_path) -> list[dict]:
    """The records of one dataset_info entry as LLaMA-Factory aligns them (_prompt, _response)."""
    import datasets

    get_dataset_list, get_dataset_converter = load_llamafactory_converters()
    attr = get_dataset_list([entry], str(out))[0]
    rows = datasets.load_dataset("json", data_files=str(out / attr.dataset_name), split="train", cache_dir=str(tmp_path / "c"))
    convert = get_dataset_converter(attr.formatting, attr, types.SimpleNamespace(dataset_dir=str(out), media_dir=str(out)))
    return [convert(row) for row in rows]


@pytest.fixture(scope="module")
def handbook_pt(handbook_document, handbook_chunks):
    """The corpus with two anxiety chunks held out, as curation would seal them."""
    chunks = {c.chunk_id: c.to_dict() for c in handbook_chunks}
    anxiety = [c for c in handbook_chunks if c.chapter_key == "anxiety-disorders"]
    held = {anxiety[1].chunk_id, anxiety[-2].chunk_id}
    text = held_out_text(held, chunks, [])
    sealed = text.sealed(chunks)
    bundles = [collect_chapter([handbook_document], c.chapter_key) for c in handbook_document.chapters]
    return pt_corpus(bundles, chunks, sealed, text), chunks, held, sealed


def test_the_pt_corpus_is_the_books_text_without_held_out_chunks_or_headers(handbook_pt, handbook_document):
    corpus, chunks, held, sealed = handbook_pt
    everything = "\n".join(r["text"] for r in corpus.records)
    assert corpus.blocks_withheld >= 2 and corpus.blocks_kept > 4 * corpus.blocks_withheld
    for chunk_id in sealed:  # neither a held-out chunk nor its neighbour shows any of its lines
        lines = [line for line in chunks[chunk_id]["text"].split("\n") if len(line.split()) >= 8]
        assert lines and not any(line in everything for line in lines), chunk_id
    assert RUNNING_HEADER not in everything and not any(line.strip().isdigit() for line in everything.split("\n"))

    # Every block of the book is shown, unless a sealed chunk holds its start or end: nothing else is lost.
    sealed_text = "\n".join(chunks[c]["text"] for c in sealed)
    blocks = [render_block(b) for ch in handbook_document.chapters for s in ch.sections for b in s.blocks if len(b.text) >= 60]
    for block in blocks:
        assert (block in everything) != (block[:60] in sealed_text or block[-60:] in sealed_text), block[:80]

    # A passage far from the held-out chunks carries its section path and the pages the chunk lists.
    depressive = next(c for c in chunks.values() if c["chapter_key"] == "depressive-disorders" and len(c["section_path"]) > 1)
    first_line = depressive["text"].split("\n")[0]
    record = next(r for r in corpus.records if first_line in r["text"])
    assert record["section_path"] == depressive["section_path"] and record["section"] == " > ".join(depressive["section_path"])
    assert set(depressive["pages"]) & set(record["pages"]) and record["chapter_key"] == "depressive-disorders"
    assert record["text"].startswith(depressive["section_path"][-1] + "\n")
    # A section with a held-out chunk shows its kept blocks without its title (a heading may be a held-out question).


def test_a_section_with_a_held_out_chunk_shows_its_other_blocks_without_its_title(handbook_document, handbook_chunks):
    """A heading may be word for word the question a held-out row asks (NIMH's "What is ...?" sections)."""
    from collections import Counter

    chunks = {c.chunk_id: c.to_dict() for c in handbook_chunks}
    sizes = Counter((c.doc_id, tuple(c.section_path)) for c in handbook_chunks)
    section = max(sizes, key=sizes.get)
    members = [c for c in handbook_chunks if (c.doc_id, tuple(c.section_path)) == section]
    assert len(members) >= 3  # the last held out, its neighbour sealed, the first kept
    held = {members[-1].chunk_id}
    text = held_out_text(held, chunks, [])
    bundles = [collect_chapter([handbook_document], c.chapter_key) for c in handbook_document.chapters]
    corpus = pt_corpus(bundles, chunks, text.sealed(chunks), text)
    rest = [r for r in corpus.records if tuple(r["section_path"]) == section[1]]
    assert rest and rest[0]["text"][:60] in members[0].text  # the kept part is the section's first chunk
    assert not any(r["text"].startswith(section[1][-1] + "\n") for r in rest)
    nothing = held_out_text(set(), chunks, [])
    whole = pt_corpus(bundles, chunks, set(), nothing)  # nothing held out: the title leads
    assert any(r["text"].startswith(section[1][-1] + "\n") for r in whole.records if tuple(r["section_path"]) == section[1])
    # A title that is a held-out row's question goes too, wherever that row's answer came from.
    asked = HeldOutQuestions.of([{"qa_id": "t1", "question": section[1][-1]}])
    untitled = pt_corpus(bundles, chunks, set(), nothing, asked)
    assert len(untitled.records) == len(whole.records)
    assert not any(r["text"].startswith(section[1][-1] + "\n") for r in untitled.records if tuple(r["section_path"]) == section[1])


def test_the_pt_corpus_loads_in_llamafactory_and_as_a_hf_dataset(handbook_pt, tmp_path):
    import datasets

    corpus = handbook_pt[0]
    (tmp_path / "dataset_info.json").write_text(json.dumps({"ragtune_alpaca_train": {"file_name": "alpaca_train.jsonl"}}))
    written = write_pt_corpus(tmp_path, corpus)
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(info) == {"ragtune_alpaca_train", "ragtune_pt_train"}  # added beside the other entries
    aligned = converted(tmp_path, "ragtune_pt_train", tmp_path)
    assert [a["_prompt"][0]["content"] for a in aligned] == [r["text"] for r in corpus.records]
    hf = datasets.load_from_disk(str(written["hf_pt"]))["train"]
    assert hf.num_rows == len(corpus.records) and hf[3]["pages"] == corpus.records[3]["pages"]
    assert hf[3]["section_path"] == corpus.records[3]["section_path"]


DIALOGUES = {
    "zh": [("最近两周我每天都提不起精神，对什么都没兴趣。", "这种情况持续多久了？睡眠和食欲有变化吗？"),
           ("差不多一个月了，晚上总是醒得很早。", "情绪低落和兴趣减退持续两周以上，需要做抑郁发作的评估。")],
    "en": [("I have felt flat every day for two weeks.", "Have your sleep or appetite changed?"),
           ("I wake at four every morning.", "Low mood with early waking for two weeks calls for an assessment for a depressive episode.")],
}


def dialogue_row(language: str) -> dict:
    turns = [{"role": role, "content": text} for exchange in DIALOGUES[language] for role, text in zip(("patient", "clinician"), exchange)]
    return {"qa_id": f"dlg-{language}", "chapter_key": "depressive-disorders", "task": "counselling_dialogue", "language": language,
            "question": turns[0]["content"], "answer": " ".join(t["content"] for t in turns if t["role"] == "clinician"), "turns": turns,
            "evidence": [{"chunk_id": "c1", "text": "Low mood for two weeks.", "doc_id": "d", "section_path": ["Depressive"], "pages": [3]}],
            "chunk_ids": ["c1"]}


def test_counselling_dialogues_export_as_input_and_target_in_both_languages(tmp_path):
    pair = {**dialogue_row("en"), "qa_id": "pair", "task": "factual_recall", "question": "How long?", "answer": "Two weeks."}
    pair.pop("turns")
    write_exports(tmp_path, {"train": [dialogue_row("zh"), dialogue_row("en"), pair], "validation": [], "test": []})
    text = (tmp_path / "counselling_train.jsonl").read_text(encoding="utf-8")
    assert "\\u" not in text  # Chinese stays readable
    records = [json.loads(line) for line in text.splitlines()]
    assert [(r["qa_id"], r["turn"]) for r in records] == [("dlg-zh", 1), ("dlg-zh", 3), ("dlg-en", 1), ("dlg-en", 3)]  # the pair has none
    assert records[0]["input"] == "病人：最近两周我每天都提不起精神，对什么都没兴趣。\n医生："
    assert records[1]["input"] == ("病人：最近两周我每天都提不起精神，对什么都没兴趣。\n医生：这种情况持续多久了？睡眠和食欲有变化吗？\n"
                                   "病人：差不多一个月了，晚上总是醒得很早。\n医生：")
    assert records[1]["target"] == "情绪低落和兴趣减退持续两周以上，需要做抑郁发作的评估。"
    assert records[3]["input"] == ("Patient: I have felt flat every day for two weeks.\nClinician: Have your sleep or appetite changed?\n"
                                   "Patient: I wake at four every morning.\nClinician: ")
    assert records[2]["chunk_ids"] == ["c1"] and records[2]["pages"] == [3]  # provenance rides along

    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert "ragtune_counselling_train" in info and "ragtune_counselling_test" not in info  # no dialogues, no file, no entry
    assert not (tmp_path / "counselling_test.jsonl").exists()
    aligned = converted(tmp_path, "ragtune_counselling_train", tmp_path)
    assert [(a["_prompt"][0]["content"], a["_response"][0]["content"]) for a in aligned] == [(r["input"], r["target"]) for r in records]
