"""Prompt templates are files in ragtune/prompts/<language>/<task>.txt (judge.txt beside them);
their text, and so their hash, goes into every cache key via the rendered messages."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

PROMPT_DIR = Path(__file__).parent / "prompts"
TASKS = (
    "factual_recall",
    "clinical_vignette",
    "differential_diagnosis",
    "treatment_management",
    "counselling_dialogue",
    "unanswerable",
)
LANGUAGES = ("en", "zh")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def detect_language(text: str) -> str:
    """'zh' when CJK characters make up at least a third of the letters, else 'en': the two packs we ship."""
    sample = text[:20000]
    letters = len(LETTER.findall(sample))
    return "zh" if letters and len(CJK.findall(sample)) / letters >= 1 / 3 else "en"


def task_template(task: str, language: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")
    if language not in LANGUAGES:
        raise ValueError(f"no prompt pack for language {language!r}; packs: {', '.join(LANGUAGES)}")
    return f"{language}/{task}"


def load_template(name: str) -> str:
    return (PROMPT_DIR / f"{name}.txt").read_text(encoding="utf-8")


def template_sha256(name: str) -> str:
    return hashlib.sha256(load_template(name).encode("utf-8")).hexdigest()


def render_messages(name: str, **values: object) -> list[dict[str, str]]:
    """Fill a '### system' / '### user' template into chat messages."""
    messages: list[dict[str, str]] = []
    role, lines = None, []
    for line in load_template(name).splitlines():
        if line.startswith("### "):
            if role:
                messages.append({"role": role, "content": "\n".join(lines).strip().format(**values)})
            role, lines = line[4:].strip(), []
        else:
            lines.append(line)
    if role:
        messages.append({"role": role, "content": "\n".join(lines).strip().format(**values)})
    return messages
