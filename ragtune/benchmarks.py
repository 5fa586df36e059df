"""BENCHMARKS.md sections, written by the scripts that measured them (bench/, and make demo for its
own timings), each with the machine and the date, so no number there is typed by hand."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from pathlib import Path
from typing import Any, Callable

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def machine() -> str:
    model = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1).strip() if found else model
    return f"{os.cpu_count()} cores {model}"


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace this benchmark's section in BENCHMARKS.md, keeping the others."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\nWritten by the scripts in bench/; each section says its machine and date.\n\n"
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section.rstrip("\n") + "\n" + (text[end:] if end != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def load_labelled(path: Path, corpus: Path | None) -> list[dict[str, Any]]:
    """A labelled set of tests/data with its evidence text. NIMH passages are stored as offsets into the
    corpus files plus their sha256 (their text is not copied into this repository); without the corpus
    they are left out, and a changed corpus file is an error naming the item."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        if item["source"] == "nimh":
            if corpus is None or not (corpus / item["doc"]).exists():
                continue
            start, end = item["evidence_span"]
            evidence = (corpus / item["doc"]).read_text(encoding="utf-8")[start:end]
            if hashlib.sha256(evidence.encode()).hexdigest() != item["evidence_sha256"]:
                raise ValueError(f"{item['id']}: {item['doc']}[{start}:{end}] no longer matches its sha256; the corpus changed")
            item["evidence"] = evidence
            if "answer_span" in item:
                span = evidence[item["answer_span"][0] : item["answer_span"][1]]
                item["answer"] = f"{item['answer']}{span}" if item.get("answer", "").endswith(": ") else item.get("answer") or span
        items.append(item)
    return items


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion, 95% at the default z (sound at 0 and at n, unlike the normal approximation)."""
    if not total:
        return 0.0, 1.0
    share = successes / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z * ((share * (1 - share) / total + z * z / (4 * total * total)) ** 0.5) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def auc(pairs: list[tuple[float, bool]]) -> float:
    """Probability that a positive item scores above a negative one (ties count half)."""
    positive = [s for s, f in pairs if f]
    negative = [s for s, f in pairs if not f]
    if not positive or not negative:
        return 0.5
    return sum((a > b) + 0.5 * (a == b) for a in positive for b in negative) / (len(positive) * len(negative))


def precision_recall(items: list[dict[str, Any]], kept: Callable[[dict[str, Any]], bool], label: str) -> tuple[float, float, int]:
    """Precision and recall of kept against the items' boolean `label`, and how many were kept."""
    said = [i for i in items if kept(i)]
    true = sum(i[label] for i in said)
    positive = sum(i[label] for i in items)
    return (true / len(said) if said else 0.0), (true / positive if positive else 0.0), len(said)


def choose_threshold(items: list[dict[str, Any]], score: dict[str, float], floor: float, label: str) -> tuple[float, str]:
    """On dev: the lowest threshold whose precision reaches the floor (the most recall), else the best F1."""
    best, best_f1 = None, (-1.0, 0.0)
    for t in sorted(set(score[i["id"]] for i in items)):
        p, r, n = precision_recall(items, lambda i, t=t: score[i["id"]] >= t, label)
        if n >= 10 and p >= floor and best is None:  # ten kept items at least: one lucky pair sets no threshold
            best = t
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best_f1[0]:
            best_f1 = (f1, t)
    return (best, f"precision >= {floor} on dev") if best is not None else (best_f1[1], f"best F1 on dev (precision {floor} unreached)")
