"""The dataset card: a README.md beside the exports that says what is in the dataset, how it was
filtered, how much of each section it covers, and which models and settings made it."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ragtune.curate.curation import FUNNEL, SPLITS


def markdown_rows(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def with_total(rows: list[dict[str, Any]], label_key: str) -> list[dict[str, Any]]:
    total = {label_key: "**all**", **{k: sum(r[k] for r in rows) for k in (rows[0] if rows else {}) if k != label_key}}
    return rows + [total] if rows else rows


def section_coverage(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts = Counter((r["chapter_key"], r.get("focus") or " > ".join(r["evidence"][0]["section_path"])) for r in rows)
    return [{"chapter_key": k, "section": s, "rows": n} for (k, s), n in sorted(counts.items())]


def removed_by_reason(removed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts = Counter(r["removed_by"] for r in removed)
    return [{"removed_by": reason, "rows": n} for reason, n in sorted(counts.items())]


def review_section(review: dict[str, Any] | None) -> list[str]:
    """How many rows clinicians reviewed, what they decided, and how often the automatic gate agreed."""
    if not review or not review.get("decisions"):
        return ["## Expert review", "", "No row has been reviewed by an expert yet.", ""]
    gate = review["gate_vs_reviewers"]
    decided = {d: sum(gate[f"gate_{g}_{d}"] for g in ("pass", "fail")) for d in ("accept", "edit", "reject")}
    table = [{"gate": g, **{d: gate[f"gate_{g}_{d}"] for d in ("accept", "edit", "reject")}} for g in ("pass", "fail")]
    return [
        "## Expert review",
        "",
        f"{gate['reviewed']} rows reviewed against their evidence ({decided['accept']} accepted, {decided['edit']} edited, "
        f"{decided['reject']} rejected); {review['stale']} earlier decisions await re-review because their evidence changed. "
        f"Rejected rows are left out; {review['expert_edited_kept']} kept rows carry the reviewer's edit (expert_edited), and "
        f"{review['protected_kept']} kept rows were accepted or edited, which exempts them from the judge and groundedness thresholds.",
        "",
        f"Gate vs reviewers (the gate passes a row; the reviewer keeps it as generated only by accepting it): agreement "
        f"{gate['agreement']}, Cohen's kappa {gate['kappa']}.",
        "",
        markdown_rows(table),
        "",
    ]


def retired_section(retired: dict[str, dict[str, Any]] | None) -> list[str]:
    """Chapters whose source left the collection: their rows left every split."""
    if not retired:
        return []
    lines = ["## Retired chapters", "", "These chapters' rows left the dataset (kept in `removed.jsonl`, removed_by `retired`):", ""]
    lines += [f"- `{key}`: {entry['rows_removed']} rows; {entry['why']}" for key, entry in sorted(retired.items())]
    return lines + [""]


def style_section(styles: list[dict[str, Any]] | None) -> list[str]:
    """Rows per task style and split (ragtune.tasks: factual, vignette, dialogue, grown from seed tasks ...)."""
    if not styles:
        return []
    return ["## Rows per task style", "", markdown_rows(with_total(styles, "task")), ""]


def chapter_pair_section(pairs: list[dict[str, Any]] | None, chapters: int) -> list[str]:
    """Multi-hop rows per pair of chapters they join, and how many of the collection's pairs they cover."""
    if not pairs:
        return []
    possible = chapters * (chapters - 1) // 2
    return ["## Multi-hop rows per chapter pair", "",
            f"Multi-hop rows ask one question over two chapters, each hop answered by a span of its own chapter; "
            f"they join {len(pairs)} of the {possible} pairs of this collection's {chapters} chapters.", "",
            markdown_rows(with_total(pairs, "chapters")), ""]


def render_card(
    *,
    name: str,
    counts: list[dict[str, Any]],
    funnel: list[dict[str, Any]],
    dedup_counts: list[dict[str, Any]],
    removed: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    chart_file: str,
    files: list[str],
    languages: list[str],
    models: dict[str, Any],
    settings: dict[str, Any],
    split_sha256: dict[str, str],
    review: dict[str, Any] | None = None,
    retired: dict[str, dict[str, Any]] | None = None,
    styles: list[dict[str, Any]] | None = None,
    chapter_pairs: list[dict[str, Any]] | None = None,
) -> str:
    sizes = {split: sum(c[split] for c in counts) for split in SPLITS}
    front = {
        "language": languages or ["en"],
        "task_categories": ["question-answering", "text-generation"],
        "pretty_name": name,
        "configs": [{"config_name": "default", "data_files": [{"split": split, "path": f"messages_{split}.jsonl"} for split in SPLITS]}],
    }
    parts = [
        "---",
        json.dumps(front, ensure_ascii=False, indent=1),  # JSON is YAML; the Hub reads it as the card's metadata
        "---",
        f"# {name}",
        "",
        f"{sizes['train']} train, {sizes['validation']} validation and {sizes['test']} test rows over {len(counts)} chapters, "
        "generated by ragtune from the source "
        "documents with retrieval-grounded prompts, then filtered, judged and deduplicated. Every row keeps its "
        "provenance: document ids, chapter, section paths, pages, chunk ids and the chunks its answer is supported by.",
        "",
        f"Validation (sha256 `{split_sha256['validation']}`) and test (sha256 `{split_sha256['test']}`) are frozen: "
        "their questions come from held-out chunks. No train row is asked about, answers from or shows a held-out "
        "chunk or any text overlapping one (13-word windows; the chunks' overlapping neighbours are sealed too), "
        "validation shows no test text, and no train question is a near duplicate of a held-out question. "
        "Validation chose the training epoch; test was seen by neither training nor that choice.",
        "",
        "## Rows per chapter",
        "",
        markdown_rows(with_total(counts, "chapter_key")),
        "",
        f"![rows per chapter]({chart_file})",
        "",
        *style_section(styles),
        *chapter_pair_section(chapter_pairs, len(counts)),
        "## Filter funnel",
        "",
        " → ".join(FUNNEL) + ": generated candidates; valid = passed the quality rules; deduplicated = after "
        "duplicates within and across chapters; judged = scored at or above the judge's threshold (a weak judge's "
        "scores are recorded but do not filter); kept = also "
        "grounded enough and placed in a split without leakage.",
        "",
        markdown_rows(with_total(funnel, "chapter_key")),
        "",
        "Removed after the per-chapter filter, by reason:",
        "",
        markdown_rows(removed_by_reason(removed)),
        "",
        "Duplicates removed per stage (exact question, MinHash questions, MinHash question+answer, embeddings):",
        "",
        markdown_rows(with_total(dedup_counts, "chapter_key")),
        "",
        *review_section(review),
        *retired_section(retired),
        "## Coverage per section",
        "",
        markdown_rows(section_coverage(rows)),
        "",
        "## Files",
        "",
        *[f"- `{f}`" for f in files],
        "",
        "Load with `datasets.load_from_disk(\"hf_dataset\")`, `datasets.load_dataset(\"json\", data_files=...)`, "
        "or point LLaMA-Factory's `dataset_dir` here (dataset_info.json names every file with its column mapping).",
        "",
        "## Models and settings",
        "",
        markdown_rows([{"role": k, "model": v} for k, v in models.items()]),
        "",
        "```json",
        json.dumps(settings, indent=1, ensure_ascii=False, default=str),
        "```",
        "",
    ]
    return "\n".join(parts)
