"""Curation: per-chapter judging and groundedness, then the whole dataset (cross-chapter dedup,
thresholds, leak-free split with a frozen eval set), its exports and dataset card, and the checks."""

import json
from collections import Counter
from dataclasses import asdict
from statistics import mean

import dagster as dg
import numpy as np

from pipeline_assets.config import LLM_RETRY, config_from_settings, fail_if_endpoint_down
from pipeline_assets.generate import qa_filtered
from pipeline_assets.metadata import table
from pipeline_assets.partitions import CHAPTERS, chapter_partitions
from ragtune.curate.curation import CurationSettings, FrozenEval, curate, rows_per_chapter, touched_chunks
from ragtune.curate.dataset_card import removed_by_reason, render_card
from ragtune.curate.dedup import STAGES, DedupSettings, deduplicate, near_duplicate_pairs
from ragtune.curate.exports import ExportSettings, to_alpaca, write_exports
from ragtune.curate.grounded_judge import QAJudgeSettings, judge_rows
from ragtune.generate.grounding import GroundednessSettings, groundedness_scores
from ragtune.index.vector_index import ChunkIndex
from ragtune.jsonl import read_jsonl, write_jsonl
from ragtune.plots import markdown_image, rows_per_chapter_bars
from resources.embedder import EmbedderResource
from resources.llm import LLMResource
from resources.storage import DataDirResource

QAJudgeConfig = config_from_settings("QAJudgeConfig", QAJudgeSettings, "Sampling of the grounded judge.")
GroundednessConfig = config_from_settings("GroundednessConfig", GroundednessSettings, "Deterministic groundedness scoring.")
MIN_MEAN_GROUNDEDNESS = 0.7  # asset check: the kept rows' mean groundedness
MAX_NEAR_DUPLICATE_RATE = 0.02  # asset check: share of kept rows that duplicate another kept row


class JudgedConfig(dg.Config):
    judge: QAJudgeConfig = QAJudgeConfig()
    groundedness: GroundednessConfig = GroundednessConfig()


DedupConfig = config_from_settings("DedupConfig", DedupSettings, "Thresholds and stages of cross-chapter dedup.")


CurationConfig = config_from_settings("CurationConfig", CurationSettings, "Judge and groundedness thresholds, eval share.")


class DatasetConfig(CurationConfig):
    refreeze_eval: bool = False  # draw a new eval set; earlier scores stop being comparable
    dedup: DedupConfig = DedupConfig()


ExportConfig = config_from_settings("ExportConfig", ExportSettings, "The RAFT variant and the dataset card's name.")


def judged_paths(storage: DataDirResource, key: str):
    return storage.layout.judged(key), storage.layout.judged_questions(key)


@dg.asset(
    group_name="qa",
    partitions_def=chapter_partitions,
    deps=[qa_filtered],
    kinds={"python"},
    pool="llm",
    retry_policy=LLM_RETRY,
    automation_condition=dg.AutomationCondition.eager(),
)
def qa_judged(
    context: dg.AssetExecutionContext, config: JudgedConfig, storage: DataDirResource, judge_llm: LLMResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """The chapter's filtered pairs, each scored twice: by the grounded LLM judge (1-10 on faithful,
    relevant, clear, useful, with a rationale; it sees the evidence) and by the deterministic
    groundedness score (answer sentences supported by the evidence, lexically or by embeddings).
    Both stay on the row; thresholds apply when the dataset is assembled. Judge calls are cached."""
    key = context.partition_key
    rows = read_jsonl(storage.layout.filtered(key))
    model = embedder.embedder()
    grounded = groundedness_scores(rows, model, GroundednessSettings(**config.groundedness.model_dump()))
    rows = [{**row, "groundedness": g["groundedness"], "groundedness_sentences": g["sentences"]} for row, g in zip(rows, grounded)]
    settings = QAJudgeSettings(**config.judge.model_dump())
    client = judge_llm.client(storage.layout.llm_cache_dir)
    title = rows[0]["chapter_title"] if rows else key
    judged, failures = judge_rows(rows, title, client, settings, weak=judge_llm.is_weak_default)
    out, vectors_path = judged_paths(storage, key)
    write_jsonl(out, judged)
    np.save(vectors_path, model.encode([row["question"] for row in judged]))
    write_jsonl(storage.layout.judge_failures(key), failures)
    for failure in failures:
        context.log.warning(f"chapter '{key}' pair {failure['qa_id']}: judge failed: {failure['reason']}")
    fail_if_endpoint_down(f"chapter '{key}' (judging)", failures, len(judged) - len(failures))
    scores = [r["judge_score"] for r in judged if r["judge_score"] is not None]
    return dg.MaterializeResult(
        metadata={
            "rows": len(judged),
            "judge_model": client.model_id,
            "judge_weak": judge_llm.is_weak_default,
            "judge_note": "the embedded 135M model is a weak judge; the groundedness score filters beside it"
            if judge_llm.is_weak_default else "",
            "mean_judge_score": round(mean(scores), 2) if scores else None,
            "passing_default_judge_threshold": sum(s >= CurationSettings.min_judge_score for s in scores),
            "mean_groundedness": round(mean(r["groundedness"] for r in judged), 3) if judged else None,
            "judge_failures": len(failures),
            "sample": table([
                {"question": r["question"][:100], "judge": str(r["judge_score"]), "groundedness": r["groundedness"],
                 "rationale": (r["judge_rationale"] or "")[:120]}
                for r in judged[:8]
            ]),
            "path": dg.MetadataValue.path(str(out)),
        }
    )


@dg.asset(
    group_name="dataset",
    deps=[dg.AssetDep(qa_judged, partition_mapping=dg.AllPartitionMapping())],
    kinds={"jsonl", "faiss"},
)
def instruction_dataset(context: dg.AssetExecutionContext, config: DatasetConfig, storage: DataDirResource) -> dg.MaterializeResult:
    """All chapters deduplicated together (exact, MinHash LSH on questions and on question+answer,
    embedding cosine on FAISS), thresholded on judge score and groundedness, and split without
    leakage: eval questions come from held-out chunks, frozen by hash across reruns. Every removed
    row is kept in dataset/removed.jsonl with its reason."""
    keys = sorted(context.instance.get_dynamic_partitions(CHAPTERS))
    missing = [k for k in keys if not judged_paths(storage, k)[0].exists()]
    if missing:
        context.log.warning(f"qa_judged not materialized for {missing}; those chapters are left out")
    judged, vectors, counts = {}, {}, {}
    for k in keys:
        if k in missing:
            continue
        rows_path, vectors_path = judged_paths(storage, k)
        judged[k], vectors[k] = read_jsonl(rows_path), np.load(vectors_path)
        counts[k] = storage.layout.read_json(storage.layout.filter_counts(k), {})
    layout = storage.layout
    frozen = None
    stored = None if config.refreeze_eval else layout.read_frozen_eval()
    if stored is not None:
        try:
            frozen = FrozenEval.load(*stored)
        except ValueError as error:
            raise dg.Failure(f"{layout.frozen_eval_manifest}: {error}") from error
    settings = CurationSettings(**config.model_dump(exclude={"refreeze_eval", "dedup"}))
    weak = sorted({r["judge_model"] for rows in judged.values() for r in rows if r.get("judge_weak")})
    if weak and not config.trust_weak_judge:
        context.log.warning(f"rows judged by the weak embedded judge {weak}: their scores are kept on the rows but do not "
                            "filter (groundedness does); point the judge_llm resource at a stronger judge, or set trust_weak_judge")
    result = curate(judged, vectors, counts, settings, DedupSettings(**config.dedup.model_dump()), frozen)
    if not result.train or not result.eval:
        raise dg.Failure(
            f"only {len(result.train)} train and {len(result.eval)} eval rows survived curation across chapters "
            f"{list(judged)} (removed: {removed_by_reason(result.removed)}); lower min_judge_score or "
            "min_groundedness, raise qa_candidates' quota, or point the llm resource at a stronger model"
        )
    if result.newly_frozen:
        layout.write_frozen_eval(result.frozen.manifest(), result.frozen.rows, result.frozen.vectors)
    for split, rows, questions in (("train", result.train, result.train_vectors), ("eval", result.eval, result.frozen.vectors)):
        write_jsonl(storage.layout.dataset_rows(split), rows)
        write_jsonl(storage.layout.alpaca_split(split), [to_alpaca(r) for r in rows])
        np.save(storage.layout.dataset_row_questions(split), questions)
    write_jsonl(storage.layout.removed, result.removed)
    per_chapter = rows_per_chapter(result.train, result.eval)
    curation = {"funnel": result.funnel, "dedup": result.dedup_counts, "removed_by": removed_by_reason(result.removed),
                "rows_per_chapter": per_chapter, "eval_sha256": result.frozen.sha256, "settings": asdict(settings),
                "dedup_settings": config.dedup.model_dump()}
    storage.layout.curation_report.write_text(json.dumps(curation, indent=1), encoding="utf-8")
    return dg.MaterializeResult(
        metadata={
            "train_rows": len(result.train),
            "eval_rows": len(result.eval),
            "eval_sha256": result.frozen.sha256,
            "judge_threshold_applied": not weak or config.trust_weak_judge,
            "eval_newly_frozen": result.newly_frozen,
            "held_out_chunks": len(result.frozen.held_out_chunks),
            "rows_per_chapter": table(per_chapter),
            "funnel": table(result.funnel),
            "dedup_removed_per_stage": table(result.dedup_counts),
            "removed_by": table(removed_by_reason(result.removed)),
            "chapters_missing": dg.MetadataValue.json(missing),
            "dagster/row_count": len(result.train) + len(result.eval),
            "path": dg.MetadataValue.path(str(storage.layout.dataset_dir)),
        }
    )


@dg.asset(group_name="dataset", deps=[instruction_dataset], kinds={"jsonl", "huggingface"})
def dataset_exports(context: dg.AssetExecutionContext, config: ExportConfig, storage: DataDirResource,
                    embedder: EmbedderResource) -> dg.MaterializeResult:
    """The dataset as alpaca, ShareGPT and OpenAI-messages JSONL, a Hugging Face dataset, LLaMA-Factory's
    dataset_info.json and optionally a RAFT variant, with a dataset card (README.md) and its chart."""
    splits = {split: read_jsonl(storage.layout.dataset_rows(split)) for split in ("train", "eval")}
    curation = json.loads(storage.layout.curation_report.read_text())
    out = storage.layout.exports_dir
    pool = None
    if config.raft:
        held_out = storage.layout.held_out_chunks()
        chunks = ChunkIndex.load(storage.layout.index_dir).chunks
        pool = [c.to_dict() for c in chunks if c.chunk_id not in held_out]  # train inputs never show eval passages
    written = write_exports(out, splits, raft_pool=pool, raft_distractors=config.raft_distractors,
                            raft_oracle_share=config.raft_oracle_share, seed=curation["settings"]["seed"],
                            held_out_chunks=storage.layout.held_out_chunks())
    counts = curation["rows_per_chapter"]
    chart = rows_per_chapter_bars(counts, storage.layout.rows_per_chapter_chart)
    generator_models = sorted({r["generation"]["model"] for rows in splits.values() for r in rows})
    judge_models = sorted({f"{r['judge_model']}{' (weak judge)' if r.get('judge_weak') else ''}" for rows in splits.values() for r in rows})
    removed = read_jsonl(storage.layout.removed)
    card = render_card(
        name=config.name, counts=counts, funnel=curation["funnel"], dedup_counts=curation["dedup"], removed=removed,
        rows=splits["train"] + splits["eval"], chart_file=chart.name, files=sorted(p.name for p in written.values()) + [chart.name],
        languages=sorted({r.get("language", "en") for rows in splits.values() for r in rows}),
        models={"generator": ", ".join(generator_models), "judge": ", ".join(judge_models), "embeddings": embedder.embedder().name},
        settings={"curation": curation["settings"], "dedup": curation["dedup_settings"], "export": config.model_dump()},
        eval_sha256=curation["eval_sha256"],
    )
    storage.layout.dataset_card.write_text(card, encoding="utf-8")
    return dg.MaterializeResult(
        metadata={
            "files": dg.MetadataValue.json(sorted(p.name for p in written.values())),
            "rows_per_chapter": table(counts),
            "rows_per_chapter_chart": dg.MetadataValue.md(markdown_image(chart, "rows per chapter")),
            "funnel": table(curation["funnel"]),
            "dataset_card": dg.MetadataValue.path(str(storage.layout.dataset_card)),
            "path": dg.MetadataValue.path(str(out)),
        }
    )


def _final(storage: DataDirResource):
    rows = {split: read_jsonl(storage.layout.dataset_rows(split)) for split in ("train", "eval")}
    vectors = {split: np.load(storage.layout.dataset_row_questions(split)) for split in ("train", "eval")}
    return rows, vectors


@dg.asset_check(asset=instruction_dataset, blocking=True, description="No train/eval leakage: no train row uses a held-out chunk, no train question near-duplicates an eval question.")
def no_train_eval_leakage(storage: DataDirResource) -> dg.AssetCheckResult:
    rows, vectors = _final(storage)
    held_out = storage.layout.held_out_chunks()
    chunk_leaks = [r["qa_id"] for r in rows["train"] if touched_chunks(r) & held_out]
    raft = storage.layout.raft_export("train")
    raft_leaks = [r["id"] for r in read_jsonl(raft) if set(r["raft_passage_ids"]) & held_out] if raft.exists() else []
    found = near_duplicate_pairs(rows["eval"], rows["train"], DedupSettings(), vectors["eval"], vectors["train"])
    pairs = sorted({(eval_id, train_id) for eval_id, train_id, _ in found})  # one pair may match in several stages
    return dg.AssetCheckResult(
        passed=not chunk_leaks and not pairs and not raft_leaks,
        metadata={"train_rows_on_held_out_chunks": len(chunk_leaks), "near_duplicate_pairs": len(pairs),
                  "raft_train_inputs_with_held_out_passages": len(raft_leaks),
                  "by_stage": dg.MetadataValue.json(dict(Counter(stage for _, _, stage in found))),
                  "examples": dg.MetadataValue.json([list(p) for p in found[:5]] + chunk_leaks[:5] + raft_leaks[:5])},
    )


@dg.asset_check(asset=instruction_dataset, description=f"Near-duplicate rate of the kept rows below {MAX_NEAR_DUPLICATE_RATE:.0%}, measured by every dedup stage.")
def near_duplicate_rate(storage: DataDirResource) -> dg.AssetCheckResult:
    rows, vectors = _final(storage)
    everything = rows["train"] + rows["eval"]
    found = deduplicate(everything, np.concatenate([vectors["train"], vectors["eval"]]), DedupSettings())
    rate = len(found.removed) / len(everything) if everything else 0.0
    return dg.AssetCheckResult(
        passed=rate < MAX_NEAR_DUPLICATE_RATE,
        metadata={"rate": round(rate, 4), "duplicates": len(found.removed),
                  **{f"by_{stage}": sum(r["dedup_stage"] == stage for r in found.removed) for stage in STAGES}},
    )


@dg.asset_check(asset=instruction_dataset, description=f"Mean groundedness of the kept rows at least {MIN_MEAN_GROUNDEDNESS}.")
def mean_groundedness(storage: DataDirResource) -> dg.AssetCheckResult:
    rows, _ = _final(storage)
    scores = [r["groundedness"] for split in rows.values() for r in split]
    value = mean(scores) if scores else 0.0
    return dg.AssetCheckResult(passed=value >= MIN_MEAN_GROUNDEDNESS, metadata={"mean_groundedness": round(value, 3), "threshold": MIN_MEAN_GROUNDEDNESS})


@dg.asset_check(asset=instruction_dataset, description="Every chapter reached its quota of kept pairs (a warning: a short chapter is flagged, not fatal).")
def quota_met_per_chapter(context: dg.AssetCheckExecutionContext, storage: DataDirResource) -> dg.AssetCheckResult:
    statuses = []
    for key in sorted(context.instance.get_dynamic_partitions(CHAPTERS)):
        path = storage.layout.generation_status(key)
        if path.exists():
            statuses.append({"chapter_key": key, **json.loads(path.read_text())})
    short = [s["chapter_key"] for s in statuses if not s["quota_met"]]
    return dg.AssetCheckResult(
        passed=not short, severity=dg.AssetCheckSeverity.WARN,
        metadata={"chapters_short": dg.MetadataValue.json(short), "per_chapter": table(statuses)},
    )


DATASET_CHECKS = [no_train_eval_leakage, near_duplicate_rate, mean_groundedness, quota_met_per_chapter]
