"""Only changed chapters regenerate: declarative automation over content-hash data versions,
evaluated on reported materializations (pipeline_assets/automation.py has the chain)."""

from __future__ import annotations

import dagster as dg

from pipeline_assets.definitions import defs

A, B = "anxiety-disorders", "bipolar-and-related-disorders"


def _report(instance, asset: str, partition: str | None, version: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=asset, partition=partition, tags={"dagster/data_version": version})
    )


def _materialized(instance, assets: list[str]) -> str:
    """Both chapters with version 1 of every given asset and of the index; returns the first cursor."""
    instance.add_dynamic_partitions("chapters", [A, B])
    for asset in assets:
        for key in (A, B):
            _report(instance, asset, key, f"{asset}-{key}-1")
    _report(instance, "faiss_index", None, "index-1")
    return dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor


def _requested(result, asset: str) -> set:
    return set(result.get_requested_partitions(dg.AssetKey(asset)))


PER_CHAPTER = ["chapters", "chapter_chunks", "chapter_evidence", "qa_candidates", "seed_candidates", "qa_filtered", "qa_judged"]


def test_an_edited_chapter_regenerates_alone_and_qa_waits_for_the_index():
    with dg.instance_for_test() as instance:
        cursor = _materialized(instance, PER_CHAPTER)

        # the book is re-ingested: both chapters re-materialize, only A's content is new
        _report(instance, "chapters", A, f"chapters-{A}-2")
        _report(instance, "chapters", B, f"chapters-{B}-1")  # same content hash as before
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert _requested(result, "chapter_chunks") == {A}
        assert result.total_requested == 1  # no evidence planning against the old index
        cursor = result.cursor

        _report(instance, "chapter_chunks", A, f"chapter_chunks-{A}-2")  # A's chunk run finished
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert result.get_num_requested(dg.AssetKey("faiss_index")) == 1
        assert result.total_requested == 1
        cursor = result.cursor

        _report(instance, "faiss_index", None, "index-2")  # the rebuilt index: every chapter re-plans its evidence
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert _requested(result, "chapter_evidence") == {A, B}
        assert result.total_requested == 2
        cursor = result.cursor

        _report(instance, "chapter_evidence", A, f"chapter_evidence-{A}-2")
        _report(instance, "chapter_evidence", B, f"chapter_evidence-{B}-1")  # B retrieved the same chunks
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert _requested(result, "qa_candidates") == _requested(result, "seed_candidates") == {A}
        assert _requested(result, "qa_filtered") == _requested(result, "qa_judged") == {A}
        assert result.total_requested == 4  # one run: generate (and grow from seeds), filter, judge


def test_unchanged_chunks_do_not_rebuild_the_index():
    with dg.instance_for_test() as instance:
        cursor = _materialized(instance, ["chapters", "chapter_chunks"])
        _report(instance, "chapter_chunks", A, f"chapter_chunks-{A}-1")  # re-run, same chunks
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert result.get_num_requested(dg.AssetKey("faiss_index")) == 0


def test_a_rebuilt_index_with_the_same_content_plans_nothing():
    with dg.instance_for_test() as instance:
        cursor = _materialized(instance, PER_CHAPTER)
        _report(instance, "faiss_index", None, "index-1")  # re-run, same chunks
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert result.total_requested == 0


def test_a_new_category_on_a_fresh_instance_flows_to_the_dataset():
    """What the daemon does after the inbox sensor ingests a first document: every step is requested
    once its inputs exist (or will, in the same run), first materializations included, through to the
    dataset and its exports; then nothing more."""
    with dg.instance_for_test() as instance:
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor  # the daemon's first tick: nothing yet
        instance.add_dynamic_partitions("chapters", [A, B])
        _report(instance, "parsed_documents", None, "parsed-1")
        for key in (A, B):
            _report(instance, "chapters", key, f"chapters-{key}-1")
        wanted = {(asset, key) for asset in PER_CHAPTER[1:] for key in (A, B)} | {
            ("faiss_index", None), ("instruction_dataset", None), ("dataset_exports", None)}
        done: set = set()
        for _ in range(10):
            result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
            cursor = result.cursor
            requested = {(key.to_user_string(), p) for key in defs.resolve_all_asset_keys() for p in result.get_requested_partitions(key)}
            if not requested:
                break
            assert not requested & done, requested & done  # nothing asked twice
            for asset, partition in sorted(requested, key=lambda item: PER_CHAPTER.index(item[0]) if item[0] in PER_CHAPTER else 9):
                _report(instance, asset, partition, f"{asset}-{partition}-1")
            done |= requested
        assert done == wanted
