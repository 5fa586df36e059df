"""Preference pairs from expert decisions and the DPO step with TRL on top of a real SFT adapter of
SmolLM2-135M: after the step the model prefers the chosen answers over the rejected ones more than
the SFT model did, measured by answer loss (not by TRL's own reward numbers)."""

from __future__ import annotations

import pytest

from ragtune.curate.leakage import HeldOutText
from ragtune.curate.preference import preference, reference_pairs, review_pairs, train_side
from ragtune.review.decisions import evidence_sha256

EVIDENCE = [{"chunk_id": "anxiety:1", "text": "Generalized anxiety disorder: excessive worry on most days for at least six months."}]


def row(qa_id: str, question: str, answer: str, **extra) -> dict:
    return {"qa_id": qa_id, "chapter_key": "anxiety", "question": question, "answer": answer, "evidence": EVIDENCE, **extra}


def decision(qa_id: str, kind: str, answer: str | None = None, evidence=EVIDENCE, question: str = "How long must the worry last?") -> dict:
    return {"qa_id": qa_id, "decision": kind, "question": question if kind == "edit" else None, "answer": answer, "reason": f"{kind} reason",
            "evidence_sha256": evidence_sha256({"evidence": evidence})}


def test_reviewer_edits_and_rejections_become_pairs():
    rows = {r["qa_id"]: r for r in [
        row("edited", "How long must the worry last?", "A few days."),
        row("rejected", "What defines GAD?", "Sadness."),
        row("lonely", "Is worry a disorder?", "Always."),
        row("stale", "How long?", "A week."),
        row("accepted", "How long?", "Six months."),
        row("dialogue", "I worry.", "Tell me more.", turns=[{"role": "patient", "content": "I worry."}, {"role": "clinician", "content": "More?"}]),
    ]}
    kept = [row("kept", "what defines  GAD?", "Excessive worry on most days for at least six months.")]
    decisions = [decision("edited", "edit", "At least six months."), decision("rejected", "reject"), decision("lonely", "reject"),
                 decision("stale", "reject", evidence=[{"chunk_id": "anxiety:1", "text": "an older passage"}]), decision("accepted", "accept"),
                 decision("dialogue", "edit", "How often?"), decision("gone", "reject")]
    pairs, skipped = review_pairs(decisions, rows, kept)
    assert [(p["source"], p["prompt"], p["chosen"], p["rejected"]) for p in pairs] == [
        ("review_edit", "How long must the worry last?", "At least six months.", "A few days."),
        ("review_reject", "What defines GAD?", "Excessive worry on most days for at least six months.", "Sadness."),  # the same question, kept
    ]
    assert skipped == {"stale_or_regenerated": 2, "dialogue": 1, "rejected_without_kept_answer": 1, "task_excluded": 0}
    assert [p["qa_id"] for p in pairs] == ["edited", "rejected"]
    # A style the dataset leaves out (exclude_tasks) makes no pair either; a row without a task is the default style.
    rows["rejected"]["task"] = "treatment_management"
    pairs, skipped = review_pairs(decisions, rows, kept, ["treatment_management", "factual_recall"])
    assert pairs == [] and skipped["task_excluded"] == 4  # edited, rejected, lonely and the (task-less) dialogue

    found = reference_pairs([row("a", "Q1?", "Six months."), row("b", "Q2?", "Two weeks.")], ["six  MONTHS.", "A day."])
    assert [(p["chosen"], p["rejected"], p["source"]) for p in found] == [("Two weeks.", "A day.", "reference")]  # the same answer is no pair


def test_whatever_their_source_pairs_of_held_out_rows_or_showing_held_out_text_are_dropped():
    test_text = "Panic disorder means recurrent unexpected panic attacks followed by a month of worry about further attacks or their consequences."
    held_out = HeldOutText.of({"anxiety:9"}, [("anxiety:9", test_text)])

    def pair(qa_id: str, source: str, chosen: str = "At least six months.") -> dict:
        return preference("How long must the worry last?", chosen, "A day.", f"{qa_id}:{source}", qa_id, "anxiety", source, "a", "b", "r")

    pairs = [pair("train", "reference"), pair("held", "judged"), pair("train2", "review_edit", f"In short: {test_text}"), pair("train3", "review_reject")]
    kept, dropped = train_side(pairs, held_out, {"held"})
    assert [p["qa_id"] for p in kept] == ["train", "train3"] and dropped == 2


PAIRS = [
    ("How long must worry last for generalized anxiety disorder?", "At least six months, on most days.", "A single afternoon is enough."),
    ("Which therapy is first-line for panic disorder?", "Cognitive behavioural therapy with exposure.", "Nothing helps panic disorder."),
    ("How long must low mood last for a depressive episode?", "At least two weeks, most of the day.", "Low mood for one hour is enough."),
    ("What does lithium treatment need?", "Regular blood levels, kidney and thyroid checks.", "Lithium needs no monitoring at all."),
]


@pytest.mark.slow
def test_the_dpo_step_moves_the_sft_model_towards_the_chosen_answers(base_model_cache, tmp_path):
    from peft import PeftModel

    from ragtune.train.dpo import DPO_FILE, DPOSettings, load_dpo_model, train_dpo
    from ragtune.train.lora import LoraSettings, answer_loss, train_lora
    from tests.conftest import load_embedded_model

    sft_rows = [{"instruction": q, "input": "", "output": chosen} for q, chosen, _ in PAIRS]
    model, tokenizer = load_embedded_model(base_model_cache)
    train_lora(model, tokenizer, sft_rows, [], LoraSettings(max_steps=2, batch_size=2), tmp_path / "sft", tmp_path / "sft-work")

    def margin(policy) -> float:
        """Mean answer loss of the rejected answers minus that of the chosen ones: larger = prefers chosen more."""
        chosen = answer_loss(policy, tokenizer, [{"instruction": q, "output": c} for q, c, _ in PAIRS], 96)["loss"]
        rejected = answer_loss(policy, tokenizer, [{"instruction": q, "output": r} for q, _, r in PAIRS], 96)["loss"]
        return rejected - chosen

    before = margin(PeftModel.from_pretrained(load_embedded_model(base_model_cache)[0], str(tmp_path / "sft")))
    pairs = [{"prompt": q, "chosen": c, "rejected": r} for q, c, r in PAIRS]
    sft = PeftModel.from_pretrained(load_embedded_model(base_model_cache)[0], str(tmp_path / "sft"))
    report = train_dpo(sft, tokenizer, pairs, DPOSettings(max_steps=6, learning_rate=5e-4, batch_size=2, max_length=96),
                       tmp_path / "dpo", tmp_path / "dpo-work")
    assert report.pairs == 4 and len(report.losses) == 6 and (tmp_path / "dpo" / "adapter_config.json").exists()
    assert (tmp_path / "dpo" / DPO_FILE).exists() and not (tmp_path / "dpo-work").exists()
    after = margin(load_dpo_model(load_embedded_model(base_model_cache)[0], tmp_path / "sft", tmp_path / "dpo"))
    assert after > before + 0.1, (before, after)
