"""BENCHMARKS.md sections, written by the scripts that measured them (bench/, and make demo for its
own timings), each with the machine and the date, so no number there is typed by hand."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

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
