"""Per-chapter evidence plans, QA candidates (RAG-grounded, LLM) and their filtered version."""

import hashlib
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import dagster as dg

from pipeline_assets.automation import ON_NEW_CONTENT, ON_NEW_INDEX
from pipeline_assets.config import LLM_RETRY, config_from_settings, fail_if_endpoint_down
from pipeline_assets.index import faiss_index
from pipeline_assets.ingest import chapters
from pipeline_assets.metadata import table, usage_metadata
from pipeline_assets.partitions import chapter_partitions
from ragtune.generate.evidence import EvidencePlan, EvidenceSettings, plan_chapter_evidence
from ragtune.generate.qa_filter import DUPLICATE_RULES, FilterSettings, filter_qa
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa, shortfall_message
from ragtune.generate.self_instruct import SeedFileError, SelfInstructSettings, grow_chapter, load_seed_tasks, seed_file
from ragtune.index.vector_index import ChunkIndex
from ragtune.ingest.sources import ChapterBundle
from ragtune.jsonl import read_jsonl, write_jsonl
from ragtune.llm.progress import Progress, publish
from ragtune.llm.usage import Usage
from resources.embedder import EmbedderResource
from resources.fit_judge import FitJudgeResource
from resources.llm import LLMResource, local_client
from resources.storage import DataDirResource

EvidenceConfig = config_from_settings(
    "EvidenceConfig", EvidenceSettings, "Rounds planned per chapter, chunks retrieved for each, weights of the tasks.", asset="chapter_evidence"
)
GenerationConfig = config_from_settings(
    "GenerationConfig",
    GenerationSettings,
    "quota = kept pairs wanted per chapter (by the default filter rules), reached in waves of calls; budget_usd/budget_tokens cap what one run pays.",
    asset="qa_candidates",
)
SeedConfig = config_from_settings(
    "SeedConfig", SelfInstructSettings, "Self-instruct: seeds_dir holds <chapter_key>.jsonl seed tasks (instruction, input, output); "
    "calls x per_call new questions are grown from them and answered from the index.", asset="seed_candidates",
)
FilterConfig = config_from_settings("FilterConfig", FilterSettings, "Thresholds of the quality and duplicate rules.", asset="qa_filtered")


@dg.asset(
    group_name="generate",
    partitions_def=chapter_partitions,
    deps=[chapters, faiss_index],
    kinds={"faiss"},
    automation_condition=ON_NEW_INDEX,
)
def chapter_evidence(
    context: dg.AssetExecutionContext, config: EvidenceConfig, storage: DataDirResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """The chunks each generation round of this chapter will be grounded on, retrieved from the whole
    collection's index. Its data version is the hash of that evidence: when the index is rebuilt for
    another chapter's edit, chapters whose evidence is unchanged keep their QA fresh."""
    key = context.partition_key
    bundle = ChapterBundle.load(storage.layout.chapter(key))
    index = ChunkIndex.load(storage.layout.index_dir)
    plan = plan_chapter_evidence(bundle.merged(), index, embedder.embedder(), EvidenceSettings(**config.model_dump()))
    out = storage.layout.evidence_plan(key)
    out.write_text(json.dumps(plan.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    chunk_ids = {e["chunk_id"] for r in plan.rounds for e in r.evidence}
    other = {e["chapter_key"] for r in plan.rounds for e in r.evidence} - {key}
    return dg.MaterializeResult(
        data_version=dg.DataVersion(plan.content_sha256()),
        metadata={
            "rounds": len(plan.rounds),
            "distinct_chunks": len(chunk_ids),
            "chunks_from_other_chapters": dg.MetadataValue.json(sorted(other)),
            "language": plan.language,
            "rounds_by_task": dg.MetadataValue.json(dict(Counter(r.task for r in plan.rounds))),
            "chapters_joined": dg.MetadataValue.json(plan.chapters_joined()),
            "first_rounds": table(
                [
                    {"round": n, "task": r.task, "focus": r.focus, "chunks": ", ".join(e["chunk_id"] for e in r.evidence)}
                    for n, r in enumerate(plan.rounds[:20])
                ]
            ),
            "path": dg.MetadataValue.path(str(out)),
        },
    )


@dg.asset(
    group_name="generate",
    partitions_def=chapter_partitions,
    deps=[chapter_evidence],
    kinds={"python"},
    pool="llm",
    retry_policy=LLM_RETRY,
    automation_condition=ON_NEW_CONTENT,
)
def qa_candidates(
    context: dg.AssetExecutionContext, config: GenerationConfig, storage: DataDirResource, llm: LLMResource, fit_judge: FitJudgeResource
) -> dg.MaterializeResult:
    """Question-answer pairs (and counselling dialogues) for one chapter, generated in waves until
    `quota` pairs pass the filter: each call fills its round's task template with the chapter title
    and the planned evidence, JSON-schema constrained. By default the answer is cut from the
    evidence and the model writes the question (answer_mode per task: extractive, hybrid, abstractive). Every pair stores its evidence and supporting
    spans; each call is cached as it returns, so a rerun or a resumed crash repays nothing."""
    key = context.partition_key
    source = storage.layout.evidence_plan(key)
    if not source.exists():
        raise dg.Failure(f"{source} is missing; materialize chapter_evidence for partition '{key}' first")
    plan = EvidencePlan.from_dict(json.loads(source.read_text(encoding="utf-8")))
    client = llm.client(storage.layout.llm_cache_dir)
    settings = GenerationSettings(**config.model_dump())
    price = llm.price()

    def on_wave(progress: Progress) -> None:
        context.log.info(progress.line())
        publish(progress)

    try:
        result = generate_chapter_qa(plan, client, settings, price=price, on_wave=on_wave,
                                     rewriter=local_client(settings.rewrite_model, storage.layout.llm_cache_dir) if settings.rewrite_model else None,
                                     fit_judge=fit_judge.judge(storage.layout.llm_cache_dir))
    except ValueError as error:  # a budget in USD without a price
        raise dg.Failure(f"chapter '{key}': {error}") from error
    out = storage.layout.candidates(key)
    write_jsonl(out, result.qa_pairs)
    cost = usage_metadata(result.usage, price)
    status = {"quota": settings.quota, "kept": result.kept, "quota_met": result.quota_met, "exhausted": result.exhausted,
              "budget_reached": result.budget_reached, "usage": result.usage.to_dict(), "cost_usd": cost["cost_usd"],
              "failures": len(result.failures), "model": client.model_id, "rounds_used": result.rounds_used,
              "candidates": len(result.qa_pairs), "question_rewrites": result.question_rewrites, "rewrites_kept": result.rewrites_kept,
              # every answer this chapter's rounds got, paid now or served from the cache: what estimates learn from
              "answered_calls": result.llm_calls + result.cache_hits, "answered_completion_tokens": result.completion_tokens}
    storage.layout.write_json(storage.layout.generation_status(key), status, indent=None)
    if client.cache.corrupted:
        context.log.warning(f"chapter '{key}': {len(client.cache.corrupted)} damaged cache entries detected and regenerated")
    ledger = storage.layout.generation_failures(key)
    write_jsonl(ledger, result.failures)
    for failure in result.failures:
        context.log.warning(f"chapter '{key}' round {failure['round']} ({failure['task']}): {failure['reason']}")
    fail_if_endpoint_down(f"chapter '{key}'", result.failures, result.llm_calls + result.cache_hits, llm.endpoint)
    if shortfall := shortfall_message(key, result, settings, cost["cost_usd"]):
        context.log.warning(shortfall)
    return dg.MaterializeResult(
        metadata={
            "candidates": len(result.qa_pairs),
            "kept_by_default_filter": result.kept,
            "question_rewrites": result.question_rewrites,
            "rewrites_kept": result.rewrites_kept,
            "quota": settings.quota,
            "quota_met": result.quota_met,
            "exhausted": result.exhausted,
            "budget_reached": result.budget_reached,
            "waves": result.waves,
            "progress_by_wave": table(result.progress),
            "rounds_used": result.rounds_used,
            "by_task": dg.MetadataValue.json(dict(Counter(r["task"] for r in result.qa_pairs))),
            "by_answer_mode": dg.MetadataValue.json(dict(Counter(r["answer_mode"] for r in result.qa_pairs))),
            "rounds_without_answer": result.rounds_without_answer,
            "coverage": table(result.coverage),
            "failed_calls": len(result.failures),
            "llm_calls": result.llm_calls,
            "cache_hits": result.cache_hits,
            "cache_entries_corrupted": len(client.cache.corrupted),
            **cost,
            "model": client.model_id,
            "settings": dg.MetadataValue.json(asdict(settings)),
            "sample": table(
                [{"task": r["task"], "question": r["question"][:160], "answer": r["answer"][:160]} for r in result.qa_pairs[:8]]
            ),
            "path": dg.MetadataValue.path(str(out)),
            "failure_ledger": dg.MetadataValue.path(str(ledger)),
        }
    )


@dg.asset(
    group_name="generate",
    partitions_def=chapter_partitions,
    deps=[chapter_evidence],  # after the index holds this chapter (chapter_evidence waits for its rebuild)
    kinds={"faiss"},
    pool="llm",
    retry_policy=LLM_RETRY,
    automation_condition=ON_NEW_CONTENT,
)
def seed_candidates(
    context: dg.AssetExecutionContext, config: SeedConfig, storage: DataDirResource, llm: LLMResource, embedder: EmbedderResource,
    fit_judge: FitJudgeResource,
) -> dg.MaterializeResult:
    """Questions grown from the chapter's seed tasks (self-instruct: seeds_dir/<chapter_key>.jsonl), each
    answered with an answer unit of the passages it retrieves, picked by the fit judge when one is set, else by
    the model; a question no passage answers makes no row. No seed file: no rows. A seed file that cannot be
    read: an error naming it, no rows, and the chapter's other candidates go on."""
    key = context.partition_key
    layout = storage.layout
    settings = SelfInstructSettings(**config.model_dump())
    source = seed_file(Path(settings.seeds_dir), key) if settings.seeds_dir else None
    status: dict = {"seed_file": str(source) if source else None, "seeds": 0, "proposed": 0, "novel": 0, "answered": 0, "unanswered": [],
                    "failures": 0}
    rows, failures, seeds = [], [], []
    cost = usage_metadata(Usage(), None)
    if source is not None:
        try:
            seeds = load_seed_tasks(source)
        except SeedFileError as error:
            context.log.error(f"chapter '{key}': {error}. The chapter's other candidates go on without seed rows.")
            status["error"] = str(error)
    if seeds:
        plan = EvidencePlan.from_dict(json.loads(layout.evidence_plan(key).read_text(encoding="utf-8")))  # its title and language
        client = llm.client(layout.llm_cache_dir)
        result = grow_chapter(seeds, key, plan.chapter_title, plan.language, ChunkIndex.load(layout.index_dir), embedder.embedder(), client,
                              settings, fit_judge.judge(layout.llm_cache_dir))
        rows, failures = result.qa_pairs, result.failures
        cost = usage_metadata(result.usage, llm.price())
        status.update(seeds=len(seeds), proposed=result.proposed, novel=len(result.novel), answered=len(rows), unanswered=result.unanswered,
                      failures=len(failures), llm_calls=result.llm_calls, cache_hits=result.cache_hits, model=client.model_id,
                      usage=result.usage.to_dict())
    write_jsonl(layout.seed_tasks(key), [s.to_dict() for s in seeds])
    write_jsonl(layout.seeded_candidates(key), rows)
    write_jsonl(layout.seeded_failures(key), failures)
    layout.write_json(layout.seeded_status(key), status)
    for failure in failures:
        context.log.warning(f"chapter '{key}' seed tasks ({failure['stage']}): {failure['reason']}")
    fail_if_endpoint_down(f"chapter '{key}' seed tasks", failures, status.get("llm_calls", 0) + status.get("cache_hits", 0), llm.endpoint)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(hashlib.sha256(json.dumps([rows, [s.to_dict() for s in seeds]], sort_keys=True).encode()).hexdigest()),
        metadata={
            **{k: v for k, v in status.items() if k not in ("unanswered", "usage")},
            **cost,
            "seed_file": str(source) if source else f"none: no {key}.jsonl in {settings.seeds_dir}" if settings.seeds_dir
            else "none: seed_candidates' seeds_dir (ragtune run --seeds) is not set",
            "unanswered": dg.MetadataValue.json(status["unanswered"]),
            "sample": table([{"question": r["question"][:160], "answer": r["answer"][:160]} for r in rows[:8]]),
            "path": dg.MetadataValue.path(str(layout.seeded_candidates(key))),
            "failure_ledger": dg.MetadataValue.path(str(layout.seeded_failures(key))),
        },
    )


@dg.asset(
    group_name="generate",
    partitions_def=chapter_partitions,
    deps=[qa_candidates, seed_candidates],
    kinds={"python"},
    automation_condition=dg.AutomationCondition.eager(),
)
def qa_filtered(context: dg.AssetExecutionContext, config: FilterConfig, storage: DataDirResource, fit_judge: FitJudgeResource) -> dg.MaterializeResult:
    """The chapter's candidates (and its rows grown from seed tasks) after the quality rules (markup, self-contained question, vignette
    case, language, restatement), exact/near-duplicate removal and the groundedness gate; counts per
    rule in metadata; each rejected row, with what broke the rule, in qa/rejected/<chapter>.jsonl."""
    key = context.partition_key
    seeded = storage.layout.seeded_candidates(key)
    candidates = read_jsonl(storage.layout.candidates(key)) + (read_jsonl(seeded) if seeded.exists() else [])
    result = filter_qa(candidates, FilterSettings(**config.model_dump()), fit_judge.judge(storage.layout.llm_cache_dir))
    out = storage.layout.filtered(key)
    write_jsonl(out, result.kept)
    write_jsonl(storage.layout.rejected(key), result.rejected)
    valid = len(candidates) - sum(n for rule, n in result.removed.items() if rule not in DUPLICATE_RULES)
    counts = {"generated": len(candidates), "valid": valid}
    storage.layout.filter_counts(key).write_text(json.dumps(counts), encoding="utf-8")
    return dg.MaterializeResult(
        metadata={
            "candidates": len(candidates),
            "kept": len(result.kept),
            **{f"removed_{rule}": count for rule, count in result.removed.items()},
            "removed_by_rule": table([{"rule": rule, "removed": count} for rule, count in result.removed.items()]),
            "rejected_sample": table(
                [{"rule": r["rule"], "detail": r["detail"][:120], "question": r["question"][:100]} for r in result.rejected[:10]]
            ),
            "path": dg.MetadataValue.path(str(out)),
        }
    )
