"""The training ladder: a continued-pretraining LoRA adapter on the chapters' train-side text (PT),
the SFT LoRA adapter trained on the instruction dataset's train split, from the base or from base+PT
(the validation split chooses the epoch and stops training early), train-side preference pairs, and
a DPO step on top of the SFT adapter. The test split is not read here."""

import hashlib
import typing
from collections import Counter
from dataclasses import asdict, fields
from typing import Literal, Optional

import dagster as dg
import pydantic

from pipeline_assets.config import LLM_RETRY, fail_if_endpoint_down
from pipeline_assets.curate import dataset_exports, indexed_chunks, instruction_dataset, no_held_out_questions
from pipeline_assets.metadata import usage_metadata, watched_client
from pipeline_assets.partitions import CHAPTERS
from ragtune.curate.curation import HELD_OUT, chunk_bucket
from ragtune.curate.dataset_card import markdown_rows
from ragtune.curate.preference import dpo_pairs, reference_pairs, review_pairs, train_side, write_dpo
from ragtune.curate.pt_corpus import PT_FILE
from ragtune.curate.training_inputs import held_out_of, held_out_questions_in_training
from ragtune.evaluate.evaluation import EvalQuestion, evaluate
from ragtune.evaluate.grading import JudgeSettings, answer_questions
from ragtune.evaluate.judge_check import judge_standing
from ragtune.jsonl import read_jsonl, write_jsonl
from ragtune.plots import loss_curve, markdown_image
from ragtune.train.dpo import DPOSettings, dpo_settings_for, train_dpo
from ragtune.train.lora import LoraSettings, pt_examples, pt_settings_for, run_fingerprint, settings_for, train_lora
from resources.base_model import BaseModelResource
from resources.llm import LLMResource
from resources.storage import DataDirResource


def profile_config(name: str, settings: type, what: str, profiles: str, exclude: tuple[str, ...] = ()) -> type[dg.Config]:
    """A dg.Config of a profile (embedded or gpu_7b) and any of the settings' fields to override (unset = the profile's value)."""
    hints = typing.get_type_hints(settings)
    config = pydantic.create_model(
        name,
        __base__=dg.Config,
        profile=(Literal["embedded", "gpu_7b"], pydantic.Field(default="embedded", description=profiles)),
        **{f.name: (Optional[hints[f.name]], pydantic.Field(default=None, description=f"default: the profile's ({f.default})"))
           for f in fields(settings) if f.name not in exclude},
    )
    config.__doc__ = f"A {what} profile and any of its settings to override (unset = the profile's value)."
    return config


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_model(storage: DataDirResource, base_model: BaseModelResource, from_pt: bool, bf16: bool, pt_sha256: str | None = None):
    """(model, tokenizer): the base, or with from_pt the base with the continued-pretraining adapter
    merged in (the PT rung of the ladder that SFT then starts from). pt_sha256: the PT adapter an SFT
    adapter was trained on; a different one now is an error (a new PT under an old SFT is no model
    anyone trained)."""
    layout = storage.layout
    if from_pt and not layout.pt_adapter_config.exists():
        raise dg.Failure(f"from_pt is set but there is no PT adapter at {layout.pt_adapter_dir}; materialize pt_adapter first",
                         allow_retries=False)
    if from_pt and pt_sha256 and _sha(layout.pt_adapter_weights) != pt_sha256:
        raise dg.Failure(f"the PT adapter at {layout.pt_adapter_dir} changed after the SFT adapter was trained on it: "
                         "rematerialize lora_adapter (and what follows it)", allow_retries=False)
    model, tokenizer = base_model.load(layout, bf16=bf16)
    if not from_pt:
        return model, tokenizer
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(layout.pt_adapter_dir)).merge_and_unload(), tokenizer


PTLoraConfig = profile_config("PTLoraConfig", LoraSettings, "continued-pretraining LoRA",
                              "embedded: SmolLM2-135M on CPU; gpu_7b: a 7B model in bf16 with gradient checkpointing and packing.",
                              exclude=("from_pt",))
PT_EVAL_SHARE = 0.1  # passages held back (by a hash of their id) for the PT validation loss


@dg.asset(group_name="train", deps=[dataset_exports], kinds={"pytorch", "peft"}, pool="gpu")
def pt_adapter(context: dg.AssetExecutionContext, config: PTLoraConfig, storage: DataDirResource,
               base_model: BaseModelResource) -> dg.MaterializeResult:
    """The first rung of the ladder: a LoRA adapter trained by continued pre-training (every token
    learned) on the PT corpus, the chapters' train-side text (exports/pt_train.jsonl; validation and
    test text is sealed out of it). A tenth of the passages, by hash, gives the validation loss that
    chooses the epoch. SFT starts from it with lora_adapter's from_pt."""
    layout = storage.layout
    settings = pt_settings_for(config.profile, {k: v for k, v in config.model_dump().items() if k != "profile"})
    refuse_held_out_questions(storage, "exports")
    records = read_jsonl(layout.exports_dir / PT_FILE)
    if not records:  # not a failure: SFT from the base needs no PT rung (lora_adapter's from_pt says so if it is asked for)
        context.log.warning(f"{layout.exports_dir / PT_FILE} holds no passages (dataset_exports' pt_corpus is off?): no PT adapter trained")
        return dg.MaterializeResult(metadata={"passages": 0, "skipped": "no PT corpus"})
    held = {r["id"] for r in records if chunk_bucket(r["id"], settings.seed) < PT_EVAL_SHARE} if len(records) >= 5 else set()
    train_rows, eval_rows = [r for r in records if r["id"] not in held], [r for r in records if r["id"] in held]
    model, tokenizer = base_model.load(layout, bf16=settings.bf16)
    work_dir = layout.lora_work_dir("pt-" + base_model.fingerprint(settings, train_rows, eval_rows))
    report = train_lora(model, tokenizer, train_rows, eval_rows, settings, layout.pt_adapter_dir, work_dir, examples=pt_examples)
    plot = loss_curve(report.losses, report.eval_losses, layout.chart("pt_loss_curve"))
    return dg.MaterializeResult(metadata={
        "profile": config.profile,
        "passages": len(train_rows),
        "validation_passages": len(eval_rows),
        **training_metadata(report, settings, plot, "PT loss curve"),
        "path": dg.MetadataValue.path(str(layout.pt_adapter_dir)),
    })


def training_metadata(report, settings: LoraSettings, plot, title: str) -> dict:
    """What every LoRA step reports: steps, epochs, first and last loss, best validation loss, tokens,
    parameters, time, settings and the loss curve."""
    losses = [h["loss"] for h in report.losses]
    return {
        "steps": len(losses),
        "epochs_run": report.epochs_run,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "best_validation_loss": report.best_eval_loss,
        "train_tokens": report.train_tokens,
        "trainable_params": report.trainable_params,
        "seconds": report.seconds,
        "settings": dg.MetadataValue.json(asdict(settings)),
        "loss_curve": dg.MetadataValue.md(markdown_image(plot, title)),
    }


LoraConfig = profile_config("LoraConfig", LoraSettings, "LoRA", "embedded: SmolLM2-135M on CPU; gpu_7b: a 7B model in bf16 with gradient checkpointing and packing.")


@dg.asset(group_name="train", deps=[instruction_dataset, pt_adapter], kinds={"pytorch", "peft"}, pool="gpu")
def lora_adapter(
    context: dg.AssetExecutionContext, config: LoraConfig, storage: DataDirResource, base_model: BaseModelResource
) -> dg.MaterializeResult:
    """A peft LoRA adapter trained with transformers' Trainer: loss on answer tokens, validation loss
    every epoch, early stop, the best epoch kept; the loss curve is plotted. The test split, which
    heldout_loss and judge_scores report on, plays no part in training or in the choice of epoch."""
    settings = settings_for(config.profile, {k: v for k, v in config.model_dump().items() if k != "profile"})
    refuse_held_out_questions(storage, "dataset")
    train_rows = read_jsonl(storage.layout.alpaca_split("train"))
    eval_rows = read_jsonl(storage.layout.alpaca_split("validation"))
    model, tokenizer = start_model(storage, base_model, settings.from_pt, settings.bf16)
    adapter_dir = storage.layout.adapter_dir
    pt_sha256 = _sha(storage.layout.pt_adapter_weights) if settings.from_pt else None
    start = [{"pt_adapter": pt_sha256}] if pt_sha256 else []  # what SFT started from is part of what was trained
    work_dir = storage.layout.lora_work_dir(base_model.fingerprint(settings, train_rows, eval_rows + start))
    report = train_lora(model, tokenizer, train_rows, eval_rows, settings, adapter_dir, work_dir)
    if pt_sha256:  # which PT adapter this SFT adapter sits on: loading it later checks the same one is there
        training = storage.layout.read_json(storage.layout.training_report)
        storage.layout.write_json(storage.layout.training_report, {**training, "pt_adapter_sha256": pt_sha256}, indent=2)
    plot = loss_curve(report.losses, report.eval_losses, storage.layout.chart("loss_curve"))
    if report.resumed_from:
        context.log.info(f"resumed from {report.resumed_from}")
    return dg.MaterializeResult(
        metadata={
            "profile": config.profile,
            **training_metadata(report, settings, plot, "loss curve"),
            "stopped_early": report.stopped_early,
            "train_rows": report.train_rows,
            "validation_rows": report.eval_rows,
            "selection_split": "validation",
            "base_model": base_model.model_id(),
            "validation_loss_per_epoch": dg.MetadataValue.md(markdown_rows(report.eval_losses) if report.eval_losses else "no validation split"),
            "path": dg.MetadataValue.path(str(adapter_dir)),
        }
    )


def refuse_held_out_questions(storage: DataDirResource, scope: str) -> None:
    """Fail a training step whose inputs (scope: dataset, exports or preferences) show a validation or
    test question, naming the files (the blocking checks stop a run before it; this also holds when a
    training asset runs on its own)."""
    found = held_out_questions_in_training(storage.layout, (scope,))
    if found:
        named = "; ".join(f"{name}: {', '.join(hits[:3])}" for name, hits in found.items())
        raise dg.Failure(f"training inputs show held-out questions ({named}); remove those records (or their dataset_info.json "
                         "entry), or rematerialize the asset that wrote them", allow_retries=False)


def trained_from_pt(layout) -> tuple[bool, str | None]:
    """(whether the SFT adapter was trained on base+PT, that PT adapter's sha256), from adapter/training.json:
    loading the SFT adapter needs the same PT merge."""
    training = layout.read_json(layout.training_report, {})
    return bool(training.get("settings", {}).get("from_pt")), training.get("pt_adapter_sha256")


def sft_model(storage: DataDirResource, base_model: BaseModelResource):
    """(the SFT model, tokenizer): the SFT adapter on the base (or on base+PT when it was trained from
    PT); `disable_adapter()` on it gives the model SFT started from."""
    import torch
    from peft import PeftModel

    if not storage.layout.adapter_config.exists():
        raise dg.Failure(f"no adapter at {storage.layout.adapter_dir}; materialize lora_adapter first")
    from_pt, pt_sha256 = trained_from_pt(storage.layout)
    model, tokenizer = start_model(storage, base_model, from_pt, torch.cuda.is_available(), pt_sha256)
    return PeftModel.from_pretrained(model, str(storage.layout.adapter_dir)), tokenizer


class PreferenceConfig(dg.Config):
    """Where DPO pairs come from; every source reads train-side questions only."""
    reference_questions: int = pydantic.Field(default=16, description="Train rows whose curated answer is preferred over the SFT model's own (0 = none).")
    judged_questions: int = pydantic.Field(default=8, description="Train questions answered by base and SFT and compared by judge_llm in both orders (0 = none).")
    review: bool = pydantic.Field(default=True, description="Pairs from expert edits (edited over generated) and rejections.")
    max_new_tokens: int = 96
    dpo_min_margin: int = pydantic.Field(default=3, description="Single-grade gap that makes a judged pair when the pairwise verdict is a tie.")


@dg.asset(group_name="train", deps=[lora_adapter, dg.AssetDep("review_decisions", partition_mapping=dg.AllPartitionMapping())],
          kinds={"pytorch"}, pool="gpu", retry_policy=LLM_RETRY)
def preference_pairs(context: dg.AssetExecutionContext, config: PreferenceConfig, storage: DataDirResource, base_model: BaseModelResource,
                     judge_llm: LLMResource) -> dg.MaterializeResult:
    """DPO pairs of train-side questions: reviewers' edits and rejections, the judge's base-vs-SFT
    comparisons (both orders agreeing, or a clear grade gap), and curated answers over the SFT
    model's own (SPIN-style). No pair shows validation or test text (the leakage rules of the
    dataset), so evaluating the DPO step on the test split stays honest. Judge calls are cached."""
    layout = storage.layout
    train_rows = read_jsonl(layout.dataset_rows("train"))
    train = [r for r in train_rows if not r.get("turns")]  # single-turn prompts
    asked = train[: max(config.reference_questions, config.judged_questions)]
    tuned, tokenizer = sft_model(storage, base_model)
    questions = [r["question"] for r in asked]
    sft_answers = answer_questions(tuned, tokenizer, questions, config.max_new_tokens)
    pairs = reference_pairs(asked[: config.reference_questions], sft_answers[: config.reference_questions])
    failures: list[dict] = []
    judge = watched_client(context, judge_llm, storage, "preference_pairs")
    if config.judged_questions:
        judged = asked[: config.judged_questions]
        with tuned.disable_adapter():
            base_answers = answer_questions(tuned, tokenizer, questions[: len(judged)], config.max_new_tokens)
        items = [EvalQuestion(r["qa_id"], r["chapter_key"], r["question"], r["answer"], "\n\n".join(e["text"] for e in r["evidence"][:3]))
                 for r in judged]
        result = evaluate(items, {"base": base_answers, "tuned": sft_answers[: len(judged)]}, judge,
                          JudgeSettings(max_new_tokens=config.max_new_tokens))
        pairs += dpo_pairs(result.rows, ["base", "tuned"], config.dpo_min_margin)
        failures = result.failures
    write_jsonl(layout.evaluation_failures("preference_pairs"), failures)
    skipped: dict[str, int] = {}
    if config.review:
        keys = sorted(context.instance.get_dynamic_partitions(CHAPTERS))
        decisions = [d for k in keys for d in layout.read_decisions(k).values()]
        generated = {r["qa_id"]: r for k in keys for r in read_jsonl(layout.judged(k))}
        excluded = layout.read_json(layout.curation_report, {}).get("settings", {}).get("exclude_tasks", [])
        found, skipped = review_pairs(decisions, generated, train_rows, excluded)
        pairs += found
    kept, leaking = train_side_pairs(storage, pairs)
    write_dpo(kept, layout.dpo_dir, layout.train_preference_pairs.stem)
    if config.judged_questions:
        fail_if_endpoint_down("preference_pairs: judge", failures, result.summary["judged"]["answers_graded"] + result.summary["judged"]["comparisons_judged"],
                              judge_llm.endpoint)
    by_source = Counter(p["source"] for p in kept)
    return dg.MaterializeResult(metadata={
        "pairs": len(kept),
        **{f"from_{source}": by_source[source] for source in ("reference", "judged", "review_edit", "review_reject")},
        "dropped_showing_held_out_text": leaking,
        **{f"review_skipped_{reason}": n for reason, n in skipped.items()},
        "judge_model": judge.model_id,
        **{k: v for k, v in judge_standing(judge.model_id).items() if k in ("judge_agreement", "judge_weak", "judge_note")},
        "judge_failures": len(failures),
        **usage_metadata(judge.paid, judge_llm.price()),
        "path": dg.MetadataValue.path(str(layout.train_preference_pairs)),
    })


def train_side_pairs(storage: DataDirResource, pairs: list[dict]) -> tuple[list[dict], int]:
    """(pairs, dropped) against the frozen validation and test splits (preference.train_side)."""
    manifest = storage.layout.read_frozen_splits()[0]
    held_ids = {qa_id for name in HELD_OUT for qa_id in manifest[name]["qa_ids"]}
    return train_side(pairs, held_out_of(storage.layout, indexed_chunks(storage), HELD_OUT), held_ids)


TRAINING_CHECKS = [no_held_out_questions(preference_pairs, "preferences")]

DPOTrainConfig = profile_config("DPOTrainConfig", DPOSettings, "DPO", "embedded: SmolLM2-135M on CPU; gpu_7b: a 7B model in bf16 on one GPU.")


@dg.asset(group_name="train", deps=[preference_pairs], kinds={"pytorch", "peft"}, pool="gpu")
def dpo_adapter(context: dg.AssetExecutionContext, config: DPOTrainConfig, storage: DataDirResource,
                base_model: BaseModelResource) -> dg.MaterializeResult:
    """A DPO step with TRL on top of the SFT adapter: SFT merged into the base is both the start and
    the reference policy; the new LoRA adapter is saved apart (adapter_dpo/). judge_scores and
    heldout_loss compare base, SFT and SFT+DPO on the test split."""
    layout = storage.layout
    settings = dpo_settings_for(config.profile, {k: v for k, v in config.model_dump().items() if k != "profile"})
    refuse_held_out_questions(storage, "preferences")
    pairs = read_jsonl(layout.train_preference_pairs)
    if not pairs:
        raise dg.Failure(f"{layout.train_preference_pairs} holds no preference pairs: review rows in Label Studio, raise "
                         "preference_pairs' reference_questions or judged_questions, or point judge_llm at a stronger judge")
    sft, tokenizer = sft_model(storage, base_model)
    adapter_sha = _sha(layout.adapter_weights)
    work_dir = layout.dpo_work_dir(run_fingerprint(base_model.model_id(), settings, pairs, [{"sft_adapter": adapter_sha}]))
    report = train_dpo(sft, tokenizer, pairs, settings, layout.dpo_adapter_dir, work_dir)
    losses = [h["loss"] for h in report.losses]
    return dg.MaterializeResult(metadata={
        "profile": config.profile,
        "pairs": report.pairs,
        "steps": len(losses),
        "epochs_run": report.epochs_run,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "final_reward_margin": report.losses[-1]["reward_margin"] if report.losses else None,
        "trainable_params": report.trainable_params,
        "seconds": report.seconds,
        "sft_adapter_sha256": adapter_sha,
        "settings": dg.MetadataValue.json(asdict(settings)),
        "losses": dg.MetadataValue.md(markdown_rows(report.losses) if report.losses else "no steps"),
        "path": dg.MetadataValue.path(str(layout.dpo_adapter_dir)),
    })
