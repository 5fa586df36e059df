"""Collections: category partitions from a folder layout or a mapping file; the NIMH corpus end to end."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pytest

from ragtune.ingest.sources import parse_all
from tests.conftest import SAMPLE_HANDBOOK, shared_path

NIMH_CATEGORIES = {
    "anxiety", "bipolar", "depressive", "feeding-eating", "neurodevelopmental", "obsessive-compulsive",
    "personality", "schizophrenia-spectrum", "substance-related", "suicide", "trauma-stressor", "treatment",
}


def test_folder_layout_gives_categories_and_flags_unplaced_files(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "anxiety").mkdir(parents=True)
    (inbox / "Depressive Disorders").mkdir()
    for name in ["nimh-gad-what-you-need-to-know.web-print.pdf", "nimh-panic-disorder-what-you-need-to-know.web-print.pdf"]:
        shutil.copy(shared_path("corpus", "pdf", name), inbox / "anxiety" / name)
    shutil.copy(shared_path("corpus", "text", "nimh-perinatal-depression.md"), inbox / "Depressive Disorders")
    shutil.copy(SAMPLE_HANDBOOK, inbox / "stray.pdf")
    documents, failures = parse_all([str(inbox)], categories_from="folder")
    keys = sorted({c.chapter_key for d in documents for c in d.chapters})
    assert keys == ["anxiety", "depressive-disorders"]
    anxiety = [c for d in documents for c in d.chapters if c.chapter_key == "anxiety"]
    assert len(anxiety) == 2 and {c.title for c in anxiety} == {"Anxiety"}
    assert [f["path"].endswith("stray.pdf") for f in failures] == [True]
    assert "inbox/<category>/" in failures[0]["remedy"]


def test_mapping_file_places_every_nimh_document():
    documents, failures = parse_all([str(shared_path("corpus"))], categories_from="mapping",
                                    mapping_file=str(shared_path("corpus", "index.tsv")))
    assert failures == [] and len(documents) == 19
    keys = [c.chapter_key for d in documents for c in d.chapters]
    assert set(keys) == NIMH_CATEGORIES and keys.count("depressive") == 4


def test_mapping_category_outline_keeps_a_books_chapters_beside_a_collection(tmp_path):
    """A handbook mapped to `outline` keeps its six chapters while the leaflets beside it take their categories."""
    handbook = SAMPLE_HANDBOOK
    corpus = shared_path("corpus")
    mapping = tmp_path / "map.tsv"
    rows = [line.split("\t")[:2] for line in (corpus / "index.tsv").read_text().splitlines()[1:] if line.strip()]
    mapping.write_text("file\tcategory\n" + "".join(f"{corpus / f}\t{c}\n" for f, c in rows) + f"{handbook}\toutline\n")
    documents, failures = parse_all([str(corpus / "pdf"), str(corpus / "text"), str(handbook)], categories_from="mapping",
                                    mapping_file=str(mapping))
    assert failures == [] and len(documents) == 20
    keys = {c.chapter_key for d in documents for c in d.chapters}
    assert NIMH_CATEGORIES <= keys
    assert keys - NIMH_CATEGORIES == {"anxiety-disorders", "bipolar-and-related-disorders", "depressive-disorders", "feeding-and-eating-disorders",
                                      "obsessive-compulsive-and-related-disorders", "trauma-and-stressor-related-disorders"}


def test_mapping_without_columns_is_a_clear_error(tmp_path):
    from ragtune.ingest.pdf_parser import ParseError

    bad = tmp_path / "map.csv"
    bad.write_text("path,label\na.pdf,x\n")
    with pytest.raises(ParseError, match="'file' and 'category' columns"):
        parse_all([str(tmp_path)], categories_from="mapping", mapping_file=str(bad))


@pytest.mark.slow
def test_nimh_corpus_as_a_collection_through_the_pipeline(tmp_path):
    from pipeline_assets.definitions import build_defs
    from pipeline_assets.runner import run_config_for
    from resources import DataDirResource

    defs = build_defs({"storage": DataDirResource(data_dir=str(tmp_path))})
    config = {
        "parsed_documents": {"paths": [str(shared_path("corpus"))], "categories_from": "mapping",
                             "mapping_file": str(shared_path("corpus", "index.tsv"))},
        "chapter_evidence": {"rounds": 8},  # rounds whose passages offer no built question are never asked
        "qa_candidates": {"quota": 1, "max_waves": 1},
    }

    def run(job_name: str, key: str | None = None):
        job = defs.resolve_job_def(job_name)
        return job.execute_in_process(instance=instance, partition_key=key, run_config=run_config_for(job, config))

    with dg.instance_for_test() as instance:
        run("ingest_documents")
        assert set(instance.get_dynamic_partitions("chapters")) == NIMH_CATEGORIES
        for key in sorted(NIMH_CATEGORIES):
            run("prepare_chapter", key)
        run("build_index")
        run("generate_chapter_qa", "anxiety")
    chapter = json.loads((tmp_path / "chapters" / "anxiety.json").read_text())
    assert len(chapter["parts"]) == 3 and chapter["title"] == "Anxiety"
    chunks = [json.loads(line) for line in open(tmp_path / "chunks" / "anxiety.jsonl")]
    assert len({c["doc_id"] for c in chunks}) == 3
    indexed = [json.loads(line) for line in open(tmp_path / "index" / "chunks.jsonl")]
    assert {c["chapter_key"] for c in indexed} == NIMH_CATEGORIES
    candidates = [json.loads(line) for line in open(tmp_path / "qa" / "candidates" / "anxiety.jsonl")]
    failures = [json.loads(line) for line in open(tmp_path / "qa" / "failures" / "anxiety.jsonl")]
    assert candidates or failures
    for pair in candidates:
        assert pair["chapter_title"] == "Anxiety" and all(e["doc_id"] for e in pair["evidence"])
