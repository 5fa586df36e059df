"""`ragtune estimate` and `ragtune preview`: what a run will cost before it starts (no LLM call), and a
few rounds generated with the current prompts to read kept rows and rejections, the dataset untouched."""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import dagster as dg

from pipeline_assets.cli.display import BAD_INPUT, OK, fail
from pipeline_assets.cli.run import RunOptions, checked_run_config, effective_llm, missing_paths, resources_for
from pipeline_assets.definitions import build_defs
from pipeline_assets.estimate import estimate_plans
from pipeline_assets.generate import GenerationConfig
from pipeline_assets.runner import materialize_graph, parsed_chapter_keys
from ragtune.generate.evidence import EvidencePlan
from ragtune.generate.qa_filter import FilterSettings, filter_qa
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa
from ragtune.llm.progress import listening
from ragtune.llm.usage import Usage
from resources.storage import DataDirResource

PLANNING_JOBS = ["ingest_documents", "prepare_chapter", "build_index"]


def generation_settings(options: RunOptions) -> GenerationSettings:
    """The settings qa_candidates would run with: the project file's defaults, then the flags."""
    values = checked_run_config(options).get("qa_candidates", {})
    return GenerationSettings(**GenerationConfig(**values).model_dump())


def _plans(storage: DataDirResource, keys: list[str]) -> dict[str, EvidencePlan]:
    return {key: EvidencePlan.from_dict(storage.layout.read_json(storage.layout.evidence_plan(key)))
            for key in keys if storage.layout.evidence_plan(key).exists()}


def plan_documents(options: RunOptions, work: Path) -> dict[str, EvidencePlan]:
    """Parse, chunk, index and plan the evidence of the given documents in a scratch data folder and a
    throwaway instance: the same assets as a run, without an LLM, and nothing written to the project."""
    storage = DataDirResource(data_dir=str(work))
    config = checked_run_config(options)
    resources = {**resources_for(options), "storage": storage}
    evidence: dict = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if config.get("chapter_evidence"):
        evidence["ops"] = {"chapter_evidence": {"config": config["chapter_evidence"]}}
    with dg.DagsterInstance.ephemeral() as instance:
        # every chapter is prepared: the index (and so every chapter's evidence) spans the whole collection
        materialize_graph(instance, config, resources, log=lambda line: None, jobs=PLANNING_JOBS, console_level="CRITICAL")
        job = build_defs(resources).resolve_implicit_global_asset_job_def()
        for key in [k for k in parsed_chapter_keys(storage) if options.only is None or k in options.only]:
            job.execute_in_process(instance=instance, partition_key=key, asset_selection=[dg.AssetKey("chapter_evidence")],
                                   run_config=evidence, raise_on_error=True)
    return _plans(storage, parsed_chapter_keys(storage))


def headless_estimate(options: RunOptions, tokenizer: str | None, as_json: bool) -> int:
    if (code := missing_paths(options.paths)) is not None:
        return code
    project_storage = DataDirResource()
    try:
        settings = generation_settings(options)
        llm = effective_llm(options)
    except (ValueError, TypeError) as error:
        return fail(str(error), BAD_INPUT)
    if options.paths:
        with tempfile.TemporaryDirectory(prefix="ragtune-estimate-") as work:
            try:
                plans = plan_documents(options, Path(work))
            except Exception as error:  # e.g. no document could be parsed: the cause, in one line
                return fail(f"could not plan the documents: {getattr(error, 'description', None) or error}", BAD_INPUT)
    else:
        plans = _plans(project_storage, [k for k in parsed_chapter_keys(project_storage) if options.only is None or k in options.only])
        if not plans:
            return fail("no evidence plans in the data folder: give the documents to estimate, e.g. `ragtune estimate handbook.pdf`",
                        BAD_INPUT)
    estimates, counted_with, model_id, observed = estimate_plans(list(plans.values()), settings, llm, project_storage, tokenizer)
    price = llm.price()
    total = Usage()
    for estimate in estimates:
        total.add(estimate.usage)
    report = {"model": model_id, "tokenizer": counted_with, "quota": settings.quota, "observed_calls": observed.calls,
              "chapters": [asdict(e) for e in estimates], "total": {**total.to_dict(),
              "cost_usd": round(price.cost(total), 6) if price else None}}
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return OK
    print(f"estimate for {model_id} (prompt tokens by {counted_with}; quota {settings.quota} per chapter)")
    print(f"{'chapter':<42}{'rounds':>7}{'calls':>7}{'cached':>7}{'prompt':>10}{'completion':>12}{'cost USD':>11}")
    for e in estimates:
        cost = f"{e.cost_usd:.4f}" if e.cost_usd is not None else "unpriced"
        print(f"{e.chapter_key[:41]:<42}{e.rounds:>7}{e.calls:>7}{e.cached_calls:>7}{e.prompt_tokens:>10}{e.completion_tokens:>12}{cost:>11}")
    cost = f"{report['total']['cost_usd']:.4f}" if report["total"]["cost_usd"] is not None else "unpriced (add the model to prices)"
    print(f"{'total':<63}{total.prompt_tokens:>10}{total.completion_tokens:>12}  {cost}")
    print(f"completion tokens: {estimates[0].completion_basis if estimates else '-'}; generation only (judging adds about one "
          "call per kept row)")
    return OK


def headless_preview(options: RunOptions, chapter: str, n: int) -> int:
    storage = DataDirResource()
    if not storage.layout.evidence_plan(chapter).exists():
        known = ", ".join(k for k in parsed_chapter_keys(storage) if storage.layout.evidence_plan(k).exists()) or "none yet"
        return fail(f"chapter '{chapter}' has no evidence plan; planned chapters: {known} (run `ragtune run PATH` first)", BAD_INPUT)
    try:
        settings = generation_settings(options)
        llm = effective_llm(options)
    except (ValueError, TypeError) as error:
        return fail(str(error), BAD_INPUT)
    if (down := llm.unreachable()) is not None:
        return fail(down, BAD_INPUT)
    plan = _plans(storage, [chapter])[chapter]
    # exactly n rounds in one wave: the quota is n and every round is assumed kept
    preview = GenerationSettings(**{**asdict(settings), "quota": n, "first_keep_rate": 1.0, "pairs_per_call": 1, "max_waves": 1,
                                    "budget_usd": 0.0, "budget_tokens": 0})
    client = llm.client(storage.layout.llm_cache_dir)
    with listening(lambda p: print(f"  {p.line()}", file=sys.stderr)):
        result = generate_chapter_qa(plan, client, preview, price=llm.price(), every_task_first=False)
    filtered = filter_qa(result.qa_pairs, FilterSettings())
    print(f"preview of '{chapter}': {result.rounds_used} rounds, {len(result.qa_pairs)} rows, {len(filtered.kept)} kept, "
          f"{len(filtered.rejected)} rejected, {len(result.failures)} failed calls ({client.calls} paid, {client.hits} cached)")
    for row in filtered.kept:
        print(f"\nKEPT [{row['task']}] Q: {row['question']}\n     A: {row['answer'][:400]}")
    rows = {row["qa_id"]: row for row in result.qa_pairs}
    for rejection in filtered.rejected:
        row = rows[rejection["qa_id"]]
        print(f"\nREJECTED [{row['task']}] {rejection['rule']}: {str(rejection['detail'])[:200]}\n     Q: {row['question']}\n"
              f"     A: {row['answer'][:300]}")
    for failure in result.failures:
        print(f"\nFAILED round {failure['round']} ({failure['task']}): {failure['reason'][:300]}")
    return OK
