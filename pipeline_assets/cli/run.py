"""`ragtune run`: the graph on the user's own files, headless, over the project's Dagster instance (the
runs appear in the UI), with progress bars, a budget over the whole run and exit codes for scripts."""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pydantic

from pipeline_assets.cli.display import BAD_INPUT, BUDGET_REACHED, FAILED, OK, STOPPED, ProgressDisplay, fail, usage_table
from pipeline_assets.cli.stop import WorkerStillRunning, run_stoppable
from pipeline_assets.definitions import STAGE_JOBS, asset_settings
from pipeline_assets.metadata import usage_from_metadata
from pipeline_assets.run_control import cancel_runs_of_this_process, instance_home, pool_waits, process_tags, reap_orphaned_runs
from pipeline_assets.runner import materialize_graph, parsed_chapter_keys
from ragtune import project
from ragtune.ingest.sources import nothing_to_read
from ragtune.llm.usage import Usage
from ragtune.llm.local_models import MODELS
from ragtune.project import ROLE_PREFIXES
from resources.base_model import base_model_from_env
from resources.llm import LLMResource, llm_from_env, role_resources
from resources.storage import DataDirResource

USAGE_ASSETS = ("qa_candidates", "qa_judged", "judge_scores", "medquad_scores")
TRAINING_ASSETS = {"pt_adapter", "lora_adapter", "preference_pairs", "dpo_adapter", "judge_scores", "heldout_loss", "medquad_scores"}  # what --no-train leaves out


@dataclass
class LLMOptions:
    backend: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    json_mode: str | None = None

    def resource(self) -> LLMResource | None:
        """The LLM the flags name (the environment's RAGTUNE_LLM_* fill what they leave out); None without flags."""
        if not any((self.backend, self.model, self.base_url, self.api_key_env, self.json_mode)):
            return None
        environ = project.llm_environ()
        backend = self.backend or environ.get("RAGTUNE_LLM_BACKEND", "llamacpp")
        environ["RAGTUNE_LLM_BACKEND"] = backend
        if self.model:
            environ["RAGTUNE_LLM_MODEL"] = self.model
            environ.pop("RAGTUNE_LLM_GGUF", None)
        if self.base_url:
            environ["RAGTUNE_LLM_BASE_URL"] = self.base_url
        if self.json_mode:
            environ["RAGTUNE_LLM_JSON_MODE"] = self.json_mode
        llm = llm_from_env(environ, project.prices())
        if self.api_key_env:
            llm = LLMResource(backend=llm.backend.model_copy(update={"api_key_env": self.api_key_env}), prices=llm.prices)
            llm.backend.api_key()  # a named variable that is not set: say so now, not mid-run
        return llm


@dataclass
class RunOptions:
    paths: list[str] = field(default_factory=list)
    only: list[str] | None = None
    llm: LLMOptions = field(default_factory=LLMOptions)
    parse: dict[str, Any] = field(default_factory=dict)  # categories_from, mapping_file, parser, password, ocr_languages
    quota: int | None = None
    rounds: int | None = None
    seeds: str | None = None  # seed_candidates' seeds_dir
    budget_usd: float = 0.0
    budget_tokens: int = 0
    train: bool = True
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)  # --set asset.field=value
    roles: dict[str, str] = field(default_factory=dict)  # --judge, --grounded-judge (a local model each), --base-model


def parse_sets(values: list[str]) -> dict[str, dict[str, Any]]:
    """--set qa_candidates.max_waves=1 -> {"qa_candidates": {"max_waves": 1}} (values read as YAML scalars)."""
    import yaml

    config: dict[str, dict[str, Any]] = {}
    for value in values:
        name, _, raw = value.partition("=")
        asset, _, key = name.partition(".")
        if not raw or not key:
            raise ValueError(f"--set {value!r}: expected asset.field=value, e.g. qa_candidates.max_waves=2")
        config.setdefault(asset, {})[key] = yaml.safe_load(raw)
    return config


def run_config(options: RunOptions) -> dict[str, dict[str, Any]]:
    config: dict[str, dict[str, Any]] = {name: dict(values) for name, values in options.sets.items()}
    if options.paths:
        config.setdefault("parsed_documents", {}).update({"paths": [str(Path(p).resolve()) for p in options.paths], **options.parse})
    if options.quota is not None:
        config.setdefault("qa_candidates", {})["quota"] = options.quota
    if options.rounds is not None:
        config.setdefault("chapter_evidence", {})["rounds"] = options.rounds
    if options.seeds is not None:
        if not Path(options.seeds).is_dir():
            raise ValueError(f"--seeds {options.seeds}: no such folder; it holds one <chapter_key>.jsonl of seed tasks per chapter")
        config.setdefault("seed_candidates", {})["seeds_dir"] = str(Path(options.seeds).resolve())
    return config


def role_environ(roles: dict[str, str]) -> dict[str, str]:
    """The environment the model resources read, with the role flags over it: --judge and --grounded-judge
    name a local model (short name or GGUF) for that role; --base-model a transformers folder or hub id,
    or a GGUF (a path ending .gguf or a local model's short name)."""
    environ = project.llm_environ()
    for role, model in roles.items():
        if role == "base_model":
            gguf = model.endswith(".gguf") or model in MODELS
            environ.pop("RAGTUNE_BASE_GGUF" if not gguf else "RAGTUNE_BASE_MODEL", None)
            environ["RAGTUNE_BASE_GGUF" if gguf else "RAGTUNE_BASE_MODEL"] = model
            continue
        prefix = ROLE_PREFIXES[role]
        for name in ("GGUF", "BASE_URL", "JSON_MODE", "API_KEY"):
            environ.pop(prefix + name, None)
        environ |= {f"{prefix}BACKEND": "llamacpp", f"{prefix}MODEL": model}
    return environ


def resources_for(options: RunOptions) -> dict[str, Any]:
    """The storage, and each model role as the flags, the environment and the project file say (a judge
    role left unnamed is the generator)."""
    environ, prices = role_environ(options.roles), project.prices()
    llm = options.llm.resource() or llm_from_env(environ, prices)
    return {"storage": DataDirResource(), "llm": llm, **role_resources(environ, llm, prices), "base_model": base_model_from_env(environ)}


def step_usage(result: dg.ExecuteInProcessResult) -> dict[str, tuple[Usage, float | None, dict[str, Any]]]:
    """Tokens and cost per asset of one finished run, from its materialization metadata."""
    found: dict[str, tuple[Usage, float | None, dict[str, Any]]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        name = materialization.asset_key.to_user_string()
        meta = {k: v.value for k, v in materialization.metadata.items()}
        paid = usage_from_metadata(meta) if name in USAGE_ASSETS else None
        if paid is not None:
            found[name] = (*paid, meta)
    return found


def missing_paths(paths: list[str]) -> int | None:
    """BAD_INPUT, said in one line, when a given file or folder does not exist or holds nothing ragtune reads."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        return fail(f"{', '.join(missing)}: no such file or folder", BAD_INPUT)
    if paths and (problem := nothing_to_read(paths)):
        return fail(problem, BAD_INPUT)
    return None


def effective_llm(options: RunOptions) -> LLMResource:
    """The LLM a run would use: the flags, else the RAGTUNE_LLM_* variables and the project file."""
    return options.llm.resource() or llm_from_env(project.llm_environ(), project.prices())


def checked_run_config(options: RunOptions) -> dict[str, dict[str, Any]]:
    """The run's settings, every asset, field and value checked before any work (a typo in --set is
    refused with the valid names, not dropped or found after ingest)."""
    config = run_config(options)
    known = asset_settings()
    named = {**{name: {} for name in project.project_config().get("assets") or {}}, **config}
    for asset, values in named.items():
        if asset not in known:
            raise ValueError(f"no asset '{asset}' takes settings (--set {asset}.FIELD or the project file's assets:); "
                             f"these do: {', '.join(sorted(known))}")
        fields = known[asset].model_fields
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"{asset} has no setting {', '.join(unknown)}; its settings are: {', '.join(fields)}")
        try:
            known[asset](**values)
        except pydantic.ValidationError as error:
            raise ValueError("; ".join(
                f"{'.'.join(map(str, (asset, *e['loc']))) + ': ' if e['loc'] else ''}{e['msg'].removeprefix('Value error, ')}"
                for e in error.errors())) from None
    return config


def headless_run(options: RunOptions, debug: bool = False) -> int:
    if (code := missing_paths(options.paths)) is not None:
        return code
    try:
        config = checked_run_config(options)
        resources = resources_for(options)
        if (down := effective_llm(options).unreachable()) is not None:
            return fail(down, BAD_INPUT)
    except ValueError as error:
        return fail(str(error), BAD_INPUT)
    home = instance_home()
    storage: DataDirResource = resources["storage"]
    jobs = [j.name for j in STAGE_JOBS]
    if not options.paths:
        if not storage.layout.parsed_manifest.exists():
            return fail("give the documents to run on (files or folders), e.g. `ragtune run handbook.pdf`", BAD_INPUT)
        jobs = [j for j in jobs if j != "ingest_documents"]
    rows: list[dict[str, Any]] = []
    done: list[str] = []
    spent = Usage()
    spent_usd = 0.0
    budget_hit: list[str] = []

    def before(job: str, key: str | None, base: dict) -> dict | None:
        if job == "prepare_chapter" and options.only:
            unknown = sorted(set(options.only) - set(parsed_chapter_keys(storage)))
            if unknown:
                raise UnknownChapter(unknown, parsed_chapter_keys(storage))
        if job != "generate_chapter_qa" or not (options.budget_usd or options.budget_tokens):
            return base
        left_usd = options.budget_usd - spent_usd if options.budget_usd else 0.0
        left_tokens = options.budget_tokens - (spent.prompt_tokens + spent.completion_tokens) if options.budget_tokens else 0
        if (options.budget_usd and left_usd <= 0) or (options.budget_tokens and left_tokens <= 0):
            budget_hit.append(key or "")
            return None
        generation = {**base.get("qa_candidates", {}), "budget_usd": max(left_usd, 0.0), "budget_tokens": max(left_tokens, 0)}
        return {**base, "qa_candidates": generation}

    def after(job: str, key: str | None, result: dg.ExecuteInProcessResult) -> None:
        nonlocal spent_usd
        done.append(f"{job} {key or ''}".strip())
        if not debug:
            for line in run_warnings(instance, result.run_id):
                print(f"  warning: {line}", file=sys.stderr)
        for asset, (usage, cost, meta) in step_usage(result).items():
            rows.append({"asset": asset, "chapter": key or "-", "usage": usage, "cost_usd": cost})
            if asset == "qa_candidates":
                spent.add(usage)
                spent_usd += cost or 0.0
                if meta.get("budget_reached"):
                    budget_hit.append(key or "")

    start = time.monotonic()
    print(f"ragtune run: DAGSTER_HOME={home}  data={storage.root}", file=sys.stderr)
    with dg.DagsterInstance.get() as instance:
        for line in reap_orphaned_runs(instance):
            print(f"note: {line}", file=sys.stderr)
        waits_told: set[str] = set()

        def tell_pool_waits() -> None:
            for line in pool_waits(instance):
                if line not in waits_told:
                    waits_told.add(line)
                    print(f"  {line}", file=sys.stderr, flush=True)

        def work() -> None:
            materialize_graph(instance, config, resources, log=lambda line: print(line, file=sys.stderr), jobs=jobs, only=options.only,
                              before=before, after=after, without=None if options.train else TRAINING_ASSETS,
                              console_level="DEBUG" if debug else "CRITICAL")

        try:
            with ProgressDisplay():
                stopped_at = run_stoppable(work, tell_pool_waits)
        except WorkerStillRunning as still:
            stopped_summary(instance, rows, done, still.stopped_at)
            sys.stderr.flush()
            os._exit(STOPPED)  # the step under way has no stop check; the next run resumes from the cache
        except UnknownChapter as error:
            return fail(str(error), BAD_INPUT)
        except Exception as error:  # a failed step: its warnings, then its cause on the last line; the runs are in the UI
            if debug:
                traceback.print_exc()
            cause, step = failure_cause(instance, error, debug)
            # nothing in the given files could be parsed: bad input, said as the step said it
            return fail(f"the run failed: {cause}", BAD_INPUT if step == "parsed_documents" else FAILED)
        if stopped_at is not None:
            stopped_summary(instance, rows, done, stopped_at)
            return STOPPED
    print(usage_table(rows), file=sys.stderr)
    print(f"done in {time.monotonic() - start:.0f} s; outputs under {storage.root} (dataset/, exports/, reports/); "
          "`ragtune status` per chapter", file=sys.stderr)
    if budget_hit:
        print(f"budget reached: generation stopped in {', '.join(sorted(set(budget_hit)))}; rerun with a higher budget to "
              "continue (finished calls are cached and not paid again)", file=sys.stderr)
        return BUDGET_REACHED
    return OK


def stopped_summary(instance: dg.DagsterInstance, rows: list[dict[str, Any]], done: list[str], stopped_at: float) -> None:
    """After a stop: the runs under way canceled and their pool slots freed, what finished, and how to resume."""
    canceled = cancel_runs_of_this_process(instance, "stopped by a signal to `ragtune run`", stopped_at)
    print(f"stopped: {len(done)} run(s) finished ({', '.join(done[-6:]) or 'none'}{', ...' if len(done) > 6 else ''}); "
          f"{len(canceled)} run(s) under way marked canceled, their pool slots freed", file=sys.stderr)
    if rows:
        print(usage_table(rows), file=sys.stderr)
    print(f"to resume, run the same command again (ragtune {shlex.join(sys.argv[1:])}): every finished LLM call is in the cache "
          "and is not paid again", file=sys.stderr, flush=True)


def run_warnings(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """What the run's steps logged as warnings (the console prints none: they come after their step)."""
    return [entry.user_message for entry in instance.all_logs(run_id)
            if entry.dagster_event is None and entry.level >= logging.WARNING]


def failure_cause(instance: dg.DagsterInstance, error: Exception, debug: bool = False) -> tuple[str, str | None]:
    """(the failed step and its error's own message: the innermost cause Dagster recorded, without its
    class path; else the exception's, the failed step or None); the failed run's warnings are printed first."""
    latest = instance.get_runs(filters=dg.RunsFilter(tags=process_tags(), statuses=[dg.DagsterRunStatus.FAILURE]), limit=1)
    for run in latest:
        for line in [] if debug else run_warnings(instance, run.run_id):
            print(f"  warning: {line}", file=sys.stderr)
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            cause = entry.dagster_event.step_failure_data.error
            while cause is not None and cause.cause is not None and cause.cls_name in WRAPPERS:
                cause = cause.cause
            message = cause.message.strip().splitlines()[-1] if cause is not None and cause.message.strip() else "no message"
            if cause is not None and f"{cause.cls_name}: " in message:
                message = message.split(f"{cause.cls_name}: ", 1)[1]
            step = entry.dagster_event.step_key
            return f"{step}: {message}"[:600], step
    return f"{type(error).__name__}: {str(error)[:400]}", None


WRAPPERS = {"DagsterExecutionStepExecutionError", "RetryRequestedFromPolicy", "DagsterUserCodeExecutionError"}


class UnknownChapter(ValueError):
    def __init__(self, unknown: list[str], known: list[str]):
        super().__init__(f"unknown chapter(s) {', '.join(unknown)}; the parsed chapters are: {', '.join(known) or 'none'}")
