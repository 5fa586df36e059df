"""`ragtune status` (per chapter: fresh or stale, kept/quota, exhausted, budget, failures, tokens and
cost over all runs) and `ragtune export` (the curated dataset in one format, to a file or stdout)."""

from __future__ import annotations

import json
import sys
from typing import Any

import dagster as dg

from pipeline_assets.cli.display import BAD_INPUT, OK, fail
from pipeline_assets.run_control import instance_home
from pipeline_assets.metadata import usage_from_metadata
from pipeline_assets.partitions import CHAPTERS
from ragtune.curate.curation import RETIRED_WHY, SPLITS
from ragtune.curate.exports import EXPORT_FORMATS, export_path
from ragtune.jsonl import read_jsonl
from ragtune.llm.usage import Usage
from resources.storage import DataDirResource

# Each chapter's chain, upstream first: (asset, the dependency whose data version it must have consumed).
CHAIN = [("chapter_chunks", "chapters"), ("chapter_evidence", "faiss_index"), ("qa_candidates", "chapter_evidence"),
         ("seed_candidates", "chapter_evidence"), ("qa_filtered", "qa_candidates"), ("qa_filtered", "seed_candidates"), ("qa_judged", "qa_filtered")]
PARTITIONED = {"chapters", "chapter_chunks", "chapter_evidence", "qa_candidates", "seed_candidates", "qa_filtered", "qa_judged"}
DATA_VERSION = "dagster/data_version"
INPUT_POINTER = "dagster/input_event_pointer/"  # the storage id of the dependency's materialization a step read
PAID_ASSETS = ("qa_candidates", "seed_candidates", "qa_judged")


def _latest(instance: dg.DagsterInstance, asset: str, key: str | None):
    partition = key if asset in PARTITIONED else None
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None), limit=1
    ).records
    return records[0].asset_materialization if records else None


def _version_at(instance: dg.DagsterInstance, asset: str, storage_id: int) -> str | None:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), storage_ids=[storage_id]), limit=1).records
    return (records[0].asset_materialization.tags or {}).get(DATA_VERSION) if records else None


def freshness(instance: dg.DagsterInstance, key: str) -> tuple[str, str]:
    """("fresh" | "stale" | "missing", why): stale when a step of the chapter's chain last read
    another content version of its input than the one there is now (data versions are content
    hashes, so a rerun that rewrote the same content leaves it fresh): what automation regenerates."""
    for asset, dep in CHAIN:
        mine, theirs = _latest(instance, asset, key), _latest(instance, dep, key)
        if mine is None:
            return "missing", f"{asset} never materialized"
        pointer = (mine.tags or {}).get(INPUT_POINTER + dep)
        current = (theirs.tags or {}).get(DATA_VERSION) if theirs else None
        if pointer and current and _version_at(instance, dep, int(pointer)) != current:
            return "stale", f"{dep} changed since {asset} ran"
    return "fresh", ""


def paid_totals(instance: dg.DagsterInstance, key: str) -> tuple[Usage, float | None]:
    """Tokens and USD paid for this chapter over every run (generation and judging)."""
    total, cost, priced = Usage(), 0.0, True
    for asset in PAID_ASSETS:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=10_000
        ).records
        for record in records:
            paid = usage_from_metadata({k: v.value for k, v in record.asset_materialization.metadata.items()})
            if paid is None:
                continue
            total.add(paid[0])
            if paid[1] is not None:
                cost += paid[1]
            elif paid[0].calls:
                priced = False
    return total, (round(cost, 6) if priced else None)


def chapter_status(instance: dg.DagsterInstance, storage: DataDirResource) -> list[dict[str, Any]]:
    """Per chapter: fresh, stale, missing, or retired (no document of the collection gives it any more;
    the last curation's count of the rows that left with it, where it ran since)."""
    rows = []
    keys = sorted(instance.get_dynamic_partitions(CHAPTERS))
    gone = storage.layout.gone_from_collection(keys)
    retired_rows = (storage.layout.read_json(storage.layout.curation_report, {}) or {}).get("retired_chapters", {})
    for key in keys:
        state, why = freshness(instance, key)
        if key in gone:
            left = retired_rows.get(key, {}).get("rows_removed")
            state, why = "retired", RETIRED_WHY + (f"; {left} rows left the dataset" if left is not None else "; curate again to drop its rows")
        generation = storage.layout.read_json(storage.layout.generation_status(key), {}) or {}
        failures = sum(len(read_jsonl(path)) for path in (storage.layout.generation_failures(key), storage.layout.seeded_failures(key))
                       if path.exists())
        judge_failures = len(read_jsonl(storage.layout.judge_failures(key))) if storage.layout.judge_failures(key).exists() else 0
        usage, cost = paid_totals(instance, key)
        rows.append({"chapter": key, "state": state, "why": why, "kept": generation.get("kept"), "quota": generation.get("quota"),
                     "exhausted": generation.get("exhausted", False), "budget_reached": generation.get("budget_reached", False),
                     "generation_failures": failures, "judge_failures": judge_failures, **usage.to_dict(), "cost_usd": cost})
    return rows


def headless_status(as_json: bool) -> int:
    instance_home()
    storage = DataDirResource()
    with dg.DagsterInstance.get() as instance:
        rows = chapter_status(instance, storage)
    report = storage.layout.read_json(storage.layout.curation_report, {}) or {}
    styles, pairs = report.get("rows_per_style", []), report.get("rows_per_chapter_pair", [])
    if as_json:
        print(json.dumps({"data": str(storage.root), "chapters": rows, "dataset_rows_per_style": styles,
                          "dataset_multi_hop_rows_per_chapter_pair": pairs}, indent=1))
        return OK
    if not rows:
        print("no chapters yet: `ragtune run PATH` parses documents into chapters")
        return OK
    print(f"{'chapter':<42}{'state':<9}{'kept':>9}  {'flags':<22}{'fail':>5}{'calls':>7}{'tokens':>10}{'cost USD':>10}")
    for row in rows:
        kept = f"{row['kept']}/{row['quota']}" if row["quota"] is not None else "-"
        flags = ",".join(f for f in ("exhausted", "budget_reached") if row[f]) or "-"
        cost = f"{row['cost_usd']:.4f}" if row["cost_usd"] is not None else "unpriced"
        print(f"{row['chapter'][:41]:<42}{row['state']:<9}{kept:>9}  {flags:<22}{row['generation_failures'] + row['judge_failures']:>5}"
              f"{row['calls']:>7}{row['prompt_tokens'] + row['completion_tokens']:>10}{cost:>10}" + (f"  ({row['why']})" if row["why"] else ""))
    if styles:
        print("dataset rows per task style (train/validation/test): "
              + ", ".join(f"{s['task']} {s['train']}/{s['validation']}/{s['test']}" for s in styles))
    if pairs:
        print("multi-hop rows per chapter pair (train/validation/test): "
              + ", ".join(f"{p['chapters']} {p['train']}/{p['validation']}/{p['test']}" for p in pairs))
    return OK


def headless_export(fmt: str, split: str, out: str | None) -> int:
    """One format of the EXPORT_FORMATS table, as its step wrote it, to a file or stdout (hf: a folder)."""
    layout = DataDirResource().layout
    chosen = EXPORT_FORMATS[fmt]
    if not all(layout.dataset_rows(s).exists() for s in SPLITS):
        return fail(f"no dataset in {layout.dataset_dir}: run `ragtune run PATH` first", BAD_INPUT)
    splits = [s for s in (SPLITS if split == "all" else [split]) if s in chosen.splits]
    if not splits:
        return fail(f"{fmt} has only the {', '.join(chosen.splits)} split: use --split {chosen.splits[0]}", BAD_INPUT)
    if fmt == "hf":
        return _export_folder(export_path(layout, fmt, splits[0]), splits, out)
    lines: list[str] = []
    for name in splits:
        path = export_path(layout, fmt, name)
        if path.exists():
            lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        elif chosen.empty_file or not export_path(layout, "alpaca", name).exists():  # counselling: no file = no dialogue in that split
            switch = f" with `{chosen.switch}` on" if chosen.switch else ""
            return fail(f"{path} is missing: {chosen.written_by} writes it{switch}; materialize it (ragtune run) first", BAD_INPUT)
    text = "".join(line + "\n" for line in lines)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"{len(lines)} records ({fmt}, {split}) -> {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return OK


def _export_folder(source, splits: list[str], out: str | None) -> int:
    """The Hugging Face copy's splits saved to the folder `out` (a dataset is no stream for stdout)."""
    if not out:
        return fail("--format hf writes a folder: give it with --out DIR", BAD_INPUT)
    if not source.exists():
        return fail(f"{source} is missing: dataset_exports writes it; materialize it (ragtune run) first", BAD_INPUT)
    import datasets

    stored = datasets.load_from_disk(str(source))
    datasets.DatasetDict({s: stored[s] for s in splits if s in stored}).save_to_disk(out)
    print(f"{', '.join(s for s in splits if s in stored)} (hf) -> {out}", file=sys.stderr)
    return OK
