"""Curation: per-chapter judging and groundedness, then the whole dataset (cross-chapter dedup,
thresholds, leak-free train/validation/test split with frozen held-out splits), its exports and
dataset card, and the checks."""

import json
from collections import Counter
from dataclasses import asdict
from statistics import mean

import dagster as dg
import numpy as np

from pipeline_assets.automation import ON_NEW_CONTENT, ON_NEW_CONTENT_OR_REVIEW
from pipeline_assets.config import LLM_RETRY, config_from_settings, fail_if_endpoint_down
from pipeline_assets.generate import qa_filtered
from pipeline_assets.metadata import table, usage_metadata, watched_client
from pipeline_assets.partitions import CHAPTERS, chapter_partitions
from ragtune.curate.curation import HELD_OUT, RETIRED_WHY, SPLITS, CurationSettings, curate, load_frozen, rows_per_chapter, rows_per_chapter_pair, rows_per_style
from ragtune.curate.dataset_card import removed_by_reason, render_card
from ragtune.curate.dedup import STAGES, DedupSettings, deduplicate, near_duplicate_pairs
from ragtune.curate.exports import ExportSettings, to_alpaca, write_exports
from ragtune.curate.grounded_judge import QAJudgeSettings, judge_rows
from ragtune.curate.groundedness import GroundednessSettings, groundedness_scores
from ragtune.curate.pt_corpus import pt_corpus, write_pt_corpus
from ragtune.curate.training_inputs import held_out_of, held_out_questions, held_out_questions_in_training, split_leaks
from ragtune.evaluate.judge_check import judge_standing
from ragtune.generate.self_instruct import near_seed
from ragtune.index.vector_index import ChunkIndex
from ragtune.ingest.sources import ChapterBundle
from ragtune.jsonl import read_jsonl, write_jsonl
from ragtune.plots import markdown_image, rows_per_chapter_bars
from resources.dedup_judge import DedupJudgeResource
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


CurationConfig = config_from_settings("CurationConfig", CurationSettings, "Judge and groundedness thresholds, validation and test shares.")


class DatasetConfig(CurationConfig):
    refreeze_splits: bool = False  # draw new validation and test splits; earlier scores stop being comparable
    dedup: DedupConfig = DedupConfig()


ExportConfig = config_from_settings("ExportConfig", ExportSettings, "The RAFT variant and the dataset card's name.")


def judged_paths(storage: DataDirResource, key: str):
    return storage.layout.judged(key), storage.layout.judged_questions(key)


@dg.asset(
    group_name="curate",
    partitions_def=chapter_partitions,
    deps=[qa_filtered],
    kinds={"python"},
    pool="llm",
    retry_policy=LLM_RETRY,
    automation_condition=dg.AutomationCondition.eager(),
)
def qa_judged(
    context: dg.AssetExecutionContext, config: JudgedConfig, storage: DataDirResource, grounded_judge_llm: LLMResource, embedder: EmbedderResource
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
    client = watched_client(context, grounded_judge_llm, storage, "qa_judged")
    title = rows[0]["chapter_title"] if rows else key
    # Weak unless bench/judge.py measured its grades (grade AUC >= 0.8): a weak judge's score is recorded, not a gate.
    standing = judge_standing(client.model_id)
    judged, failures = judge_rows(rows, title, client, settings, weak=standing["grades_weak"])
    out, vectors_path = judged_paths(storage, key)
    write_jsonl(out, judged)
    np.save(vectors_path, model.encode([row["question"] for row in judged]))
    write_jsonl(storage.layout.judge_failures(key), failures)
    for failure in failures:
        context.log.warning(f"chapter '{key}' pair {failure['qa_id']}: judge failed: {failure['reason']}")
    fail_if_endpoint_down(f"chapter '{key}' (judging)", failures, len(judged) - len(failures), grounded_judge_llm.endpoint)
    scores = [r["judge_score"] for r in judged if r["judge_score"] is not None]
    return dg.MaterializeResult(
        metadata={
            "rows": len(judged),
            "judge_model": client.model_id,
            "judge_weak": standing["grades_weak"],
            "judge_grade_auc": standing["judge_grade_auc"],
            "judge_note": standing["judge_note"] + ("; its score is recorded, the groundedness score filters" if standing["grades_weak"] else ""),
            "mean_judge_score": round(mean(scores), 2) if scores else None,
            "passing_default_judge_threshold": sum(s >= CurationSettings.min_judge_score for s in scores),
            "mean_groundedness": round(mean(r["groundedness"] for r in judged), 3) if judged else None,
            "judge_failures": len(failures),
            **usage_metadata(client.paid, grounded_judge_llm.price()),
            "sample": table([
                {"question": r["question"][:100], "judge": str(r["judge_score"]), "groundedness": r["groundedness"],
                 "rationale": (r["judge_rationale"] or "")[:120]}
                for r in judged[:8]
            ]),
            "path": dg.MetadataValue.path(str(out)),
        }
    )


def indexed_chunks(storage: DataDirResource) -> dict[str, dict]:
    """chunk id -> chunk row of every indexed chunk: what the leakage rules compare against and
    where a passage sits now."""
    return {c.chunk_id: c.to_dict() for c in ChunkIndex.load(storage.layout.index_dir).chunks}


@dg.asset(
    group_name="curate",
    deps=[dg.AssetDep(qa_judged, partition_mapping=dg.AllPartitionMapping()),
          dg.AssetDep("review_decisions", partition_mapping=dg.AllPartitionMapping())],  # optional: chapters nobody reviewed have none
    automation_condition=ON_NEW_CONTENT_OR_REVIEW,  # once no chapter's QA is missing or in progress; again after new decisions
    kinds={"jsonl", "faiss"},
)
def instruction_dataset(context: dg.AssetExecutionContext, config: DatasetConfig, storage: DataDirResource, dedup_judge: DedupJudgeResource,
                        embedder: EmbedderResource) -> dg.MaterializeResult:
    """All chapters deduplicated together (exact, MinHash LSH on questions and on question+answer,
    embedding cosine on FAISS), thresholded on judge score and groundedness, and split without
    leakage into train, validation (early stopping) and test (the evaluation), the held-out two drawn
    by chunks and frozen by hash across reruns. Every removed row is kept in dataset/removed.jsonl
    with its reason."""
    keys = sorted(context.instance.get_dynamic_partitions(CHAPTERS))
    retired = dict.fromkeys(sorted(storage.layout.gone_from_collection(keys)), RETIRED_WHY)
    if retired:
        context.log.warning(f"chapters retired, their rows leave the dataset: {sorted(retired)} ({RETIRED_WHY})")
    missing = [k for k in keys if k not in retired and not judged_paths(storage, k)[0].exists()]
    if missing:
        context.log.warning(f"qa_judged not materialized for {missing}; those chapters are left out")
    judged, vectors, counts = {}, {}, {}
    for k in keys:
        if not judged_paths(storage, k)[0].exists():  # missing, or a retired chapter never judged
            continue
        rows_path, vectors_path = judged_paths(storage, k)
        judged[k], vectors[k] = read_jsonl(rows_path), np.load(vectors_path)
        counts[k] = storage.layout.read_json(storage.layout.filter_counts(k), {})
    layout = storage.layout
    frozen = None
    stored = None if config.refreeze_splits else layout.read_frozen_splits()
    if stored is not None:
        try:
            frozen = load_frozen(*stored)
        except (ValueError, KeyError) as error:
            raise dg.Failure(f"{layout.frozen_splits_manifest}: {error}") from error
    settings = CurationSettings(**config.model_dump(exclude={"refreeze_splits", "dedup"}))
    weak = sorted({r["judge_model"] for rows in judged.values() for r in rows if r.get("judge_weak")})
    if weak and not config.trust_weak_judge:
        context.log.warning(f"rows judged by the weak embedded judge {weak}: their scores are kept on the rows but do not "
                            "filter (groundedness does); point the grounded_judge_llm resource (RAGTUNE_GROUNDED_JUDGE_*, the project file's grounded_judge:) at a stronger judge, or set trust_weak_judge")
    decisions = {qa_id: d for k in keys for qa_id, d in layout.read_decisions(k).items()}
    verifier = dedup_judge.judge(layout.llm_cache_dir)
    answer_vectors = None
    if verifier is not None:  # the verified semantic stage also proposes nearest answers
        rows = [r for key in sorted(judged) for r in judged[key]]
        answer_vectors = dict(zip([r["qa_id"] for r in rows], embedder.embedder().encode([r["answer"] for r in rows])))
    result = curate(judged, vectors, counts, settings, DedupSettings(**config.dedup.model_dump()), indexed_chunks(storage), frozen, decisions,
                    retired, verifier, answer_vectors, seed_instructions(storage))
    if verifier is not None:
        context.log.info(f"dedup judge {verifier.model_id}: {verifier.calls} pairs read (the rest from the cache), {verifier.too_long} too long to judge")
    sizes = {split: len(result.splits[split]) for split in SPLITS}
    if not all(sizes.values()):
        raise dg.Failure(
            f"curation across chapters {list(judged)} left {sizes} rows (removed: {removed_by_reason(result.removed)}); every split "
            "needs rows: lower min_judge_score or min_groundedness, raise qa_candidates' quota, or point the llm resource at a stronger model"
        )
    if result.newly_frozen:
        layout.write_frozen_splits({name: result.frozen[name].manifest() for name in HELD_OUT},
                                   {name: result.frozen[name].rows for name in HELD_OUT}, {name: result.frozen[name].vectors for name in HELD_OUT})
    for split in SPLITS:
        write_jsonl(layout.dataset_rows(split), result.splits[split])
        write_jsonl(layout.alpaca_split(split), [to_alpaca(r) for r in result.splits[split]])
        np.save(layout.dataset_row_questions(split), result.vectors[split])
    write_jsonl(layout.removed, result.removed)
    per_chapter = rows_per_chapter(result.splits)
    split_sha256 = {name: result.frozen[name].sha256 for name in HELD_OUT}
    curation = {"funnel": result.funnel, "dedup": result.dedup_counts, "removed_by": removed_by_reason(result.removed),
                "rows_per_chapter": per_chapter, "rows_per_style": rows_per_style(result.splits),
                "rows_per_chapter_pair": rows_per_chapter_pair(result.splits), "split_sha256": split_sha256, "settings": asdict(settings),
                "sealed_chunks": {split: sorted(chunks) for split, chunks in result.sealed.items()},
                "dedup_settings": config.dedup.model_dump(), "review": result.review, "retired_chapters": result.retired,
                "dedup_judge": {"model": verifier.model_id, "min_yes": verifier.min_yes, "pairs_read": verifier.calls, "too_long": verifier.too_long}
                if verifier is not None else None}
    layout.write_json(layout.curation_report, curation)
    withheld = sum(bool(r.get("evidence_withheld")) for r in result.train)
    return dg.MaterializeResult(
        metadata={
            **{f"{split}_rows": n for split, n in sizes.items()},
            **{f"{name}_sha256": sha for name, sha in split_sha256.items()},
            "judge_threshold_applied": not weak or config.trust_weak_judge,
            "splits_newly_frozen": result.newly_frozen,
            **{f"{name}_chunks": len(result.frozen[name].held_out_chunks) for name in HELD_OUT},
            "sealed_chunks_for_train": len(result.sealed["train"]),
            "train_rows_with_evidence_withheld": withheld,
            "rows_per_chapter": table(per_chapter),
            "funnel": table(result.funnel),
            "dedup_removed_per_stage": table(result.dedup_counts),
            "removed_by": table(removed_by_reason(result.removed)),
            "chapters_missing": dg.MetadataValue.json(missing),
            "chapters_retired": dg.MetadataValue.json(result.retired),
            "reviewed_rows": result.review["gate_vs_reviewers"]["reviewed"],
            "stale_review_decisions": result.review["stale"],
            "gate_reviewer_agreement": result.review["gate_vs_reviewers"]["agreement"],
            "gate_reviewer_kappa": result.review["gate_vs_reviewers"]["kappa"],
            "dagster/row_count": sum(sizes.values()),
            "path": dg.MetadataValue.path(str(layout.dataset_dir)),
        }
    )


@dg.asset(group_name="curate", deps=[instruction_dataset], kinds={"jsonl", "huggingface"}, automation_condition=ON_NEW_CONTENT)
def dataset_exports(context: dg.AssetExecutionContext, config: ExportConfig, storage: DataDirResource,
                    embedder: EmbedderResource) -> dg.MaterializeResult:
    """The dataset as alpaca, ShareGPT and OpenAI-messages JSONL, counselling dialogues as input/target,
    a Hugging Face dataset, LLaMA-Factory's dataset_info.json, optionally a RAFT variant, and the
    continued-pretraining corpus of the chapters' train-side text (pt_train.jsonl, hf_pt), with a
    dataset card (README.md) and its chart."""
    splits = {split: read_jsonl(storage.layout.dataset_rows(split)) for split in SPLITS}
    curation = json.loads(storage.layout.curation_report.read_text())
    out = storage.layout.exports_dir
    pool = list(indexed_chunks(storage).values()) if config.raft else None
    sealed = {split: set(chunks) for split, chunks in curation["sealed_chunks"].items()}
    written = write_exports(out, splits, raft_pool=pool, raft_distractors=config.raft_distractors,
                            raft_oracle_share=config.raft_oracle_share, seed=curation["settings"]["seed"], sealed=sealed, reasoning=config.reasoning)
    pt = None
    if config.pt_corpus:
        chunks = indexed_chunks(storage)
        retired = curation.get("retired_chapters", {})  # a removed source's text is no training text either
        keys = sorted(k for k in context.instance.get_dynamic_partitions(CHAPTERS) if k not in retired)
        bundles = [ChapterBundle.load(storage.layout.chapter(k)) for k in keys if storage.layout.chapter(k).exists()]
        pt = pt_corpus(bundles, chunks, sealed["train"], held_out_of(storage.layout, chunks, HELD_OUT), held_out_questions(storage.layout))
        written.update(write_pt_corpus(out, pt))
    counts = curation["rows_per_chapter"]
    chart = rows_per_chapter_bars(counts, storage.layout.rows_per_chapter_chart)
    everything = [r for rows in splits.values() for r in rows]
    generator_models = sorted({r["generation"]["model"] for r in everything})
    judge_models = sorted({f"{r['judge_model']}{' (weak judge)' if r.get('judge_weak') else ''}" for r in everything})
    removed = read_jsonl(storage.layout.removed)
    card = render_card(
        name=config.name, counts=counts, funnel=curation["funnel"], dedup_counts=curation["dedup"], removed=removed,
        rows=everything, chart_file=chart.name, files=sorted(p.name for p in written.values()) + [chart.name],
        languages=sorted({r.get("language", "en") for r in everything}),
        models={"generator": ", ".join(generator_models), "judge": ", ".join(judge_models), "embeddings": embedder.embedder().name},
        settings={"curation": curation["settings"], "dedup": curation["dedup_settings"], "export": config.model_dump()},
        split_sha256=curation["split_sha256"], review=curation.get("review"), retired=curation.get("retired_chapters"),
        styles=curation.get("rows_per_style"), chapter_pairs=curation.get("rows_per_chapter_pair"),
    )
    storage.layout.dataset_card.write_text(card, encoding="utf-8")
    return dg.MaterializeResult(
        metadata={
            "files": dg.MetadataValue.json(sorted(p.name for p in written.values())),
            "rows_per_chapter": table(counts),
            "rows_per_chapter_chart": dg.MetadataValue.md(markdown_image(chart, "rows per chapter")),
            "funnel": table(curation["funnel"]),
            **({f"pt_{name}": n for name, n in pt.counts().items()} if pt else {}),
            "dataset_card": dg.MetadataValue.path(str(storage.layout.dataset_card)),
            "path": dg.MetadataValue.path(str(out)),
        }
    )


def _final(storage: DataDirResource):
    rows = {split: read_jsonl(storage.layout.dataset_rows(split)) for split in SPLITS}
    vectors = {split: np.load(storage.layout.dataset_row_questions(split)) for split in SPLITS}
    return rows, vectors


def run_dedup_settings(storage: DataDirResource) -> DedupSettings:
    """The dedup settings of the curation the checks read (its report), not the defaults: a run with its own
    thresholds is checked by them."""
    report = storage.layout.read_json(storage.layout.curation_report) or {}
    return DedupSettings(**report.get("dedup_settings", {}))


def seed_instructions(storage: DataDirResource) -> list[str]:
    """Every chapter's seed tasks as seed_candidates read them."""
    return [task["instruction"] for path in storage.layout.all_seed_tasks() for task in read_jsonl(path)]


def _leak_result(leaks: dict[str, list[str]], pairs: list | None = None, **extra) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=not leaks and not pairs, metadata={
        "records_showing_held_out_text": sum(len(ids) for ids in leaks.values()),
        "leaks_by_file": dg.MetadataValue.json({name: ids[:5] for name, ids in leaks.items()}), **extra})


# Each check reads the files its own asset writes: exports left by an earlier run (a rule since changed
# what is held out) must not block the dataset step that the next dataset_exports rewrites them from.
@dg.asset_check(asset=instruction_dataset, blocking=True, description="No split leakage: no train row or alpaca split shows validation or test chunks or text overlapping them, validation shows no test text, no train question near-duplicates a held-out question.")
def no_split_leakage(storage: DataDirResource) -> dg.AssetCheckResult:
    rows, vectors = _final(storage)
    leaks = split_leaks(storage.layout, indexed_chunks(storage), "dataset")
    held = [r for split in HELD_OUT for r in rows[split]]
    held_vectors = np.concatenate([vectors[split] for split in HELD_OUT])
    found = near_duplicate_pairs(held, rows["train"], run_dedup_settings(storage), held_vectors, vectors["train"])
    pairs = sorted({(held_id, train_id) for held_id, train_id, _ in found})  # one pair may match in several stages
    return _leak_result(leaks, pairs, near_duplicate_pairs=len(pairs), by_stage=dg.MetadataValue.json(dict(Counter(stage for _, _, stage in found))),
                        examples=dg.MetadataValue.json([list(p) for p in found[:5]]))


@dg.asset_check(asset=instruction_dataset, blocking=True, description="No seed task in any split: no kept row asks a user's seed task or "
                "nearly (self-instruct's seeds are examples, never held-out or duplicated questions).")
def no_seed_task_in_dataset(storage: DataDirResource) -> dg.AssetCheckResult:
    seeds = seed_instructions(storage)
    rows, _ = _final(storage)
    copies = [{"split": split, "qa_id": r["qa_id"], "question": r["question"], "seed": seed}
              for split in SPLITS for r in rows[split] if (seed := near_seed(r["question"], seeds))]
    return dg.AssetCheckResult(passed=not copies, metadata={"seed_tasks": len(seeds), "rows_asking_a_seed": len(copies),
                                                            "examples": dg.MetadataValue.json(copies[:5])})


@dg.asset_check(asset=dataset_exports, name="no_split_leakage", blocking=True, description="No split leakage in any export a trainer could read (RAFT, PT corpus and the Hugging Face copies included): no held-out chunk or text overlapping one.")
def no_split_leakage_in_exports(storage: DataDirResource) -> dg.AssetCheckResult:
    return _leak_result(split_leaks(storage.layout, indexed_chunks(storage), "exports"))


@dg.asset_check(asset=instruction_dataset, description=f"Near-duplicate rate of the kept rows below {MAX_NEAR_DUPLICATE_RATE:.0%}, measured by every dedup stage "
                "without the dedup judge (the stricter reading: what any stage would call a duplicate).")
def near_duplicate_rate(storage: DataDirResource) -> dg.AssetCheckResult:
    rows, vectors = _final(storage)
    everything = [r for split in SPLITS for r in rows[split]]
    found = deduplicate(everything, np.concatenate([vectors[split] for split in SPLITS]), run_dedup_settings(storage))
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


QUESTION_CHECK_FILES = {"dataset": "the SFT split, dataset/train", "exports": "every *_train export incl. RAFT and the PT corpus, and hf_dataset/hf_pt",
                        "preferences": "the DPO pairs and every file reports/dpo/dataset_info.json offers"}


def no_held_out_questions(asset, scope: str) -> dg.AssetChecksDefinition:
    """The blocking check, on an asset that writes training inputs, that none of the inputs it wrote
    (its scope: SFT split, exports, DPO pairs) shows a validation or test question: a step that would
    train on it does not run."""

    @dg.asset_check(asset=asset, name="no_held_out_questions_in_training", blocking=True,
                    description=f"No training input it writes ({QUESTION_CHECK_FILES[scope]}) contains a validation or test question.")
    def check(storage: DataDirResource) -> dg.AssetCheckResult:
        found = held_out_questions_in_training(storage.layout, (scope,))
        return dg.AssetCheckResult(passed=not found, metadata={
            "records_with_held_out_questions": sum(len(hits) for hits in found.values()),
            "by_file": dg.MetadataValue.json({name: hits[:5] for name, hits in found.items()})})

    return check


DATASET_CHECKS = [no_split_leakage, no_seed_task_in_dataset, no_split_leakage_in_exports, near_duplicate_rate, mean_groundedness, quota_met_per_chapter,
                  no_held_out_questions(instruction_dataset, "dataset"), no_held_out_questions(dataset_exports, "exports")]
