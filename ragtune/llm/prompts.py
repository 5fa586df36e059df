"""Prompt templates are files in ragtune/prompts/<language>/<task>.txt (judge.txt beside them);
their text, and so their hash, goes into every cache key via the rendered messages."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from ragtune.llm.control_tokens import CONTROL, FENCES, Neutraliser, fence_pattern
from ragtune.tasks import TASK_STYLES

PROMPT_DIR = Path(__file__).parent.parent / "prompts"  # ragtune/prompts/: templates for every stage
LANGUAGES = ("en", "zh")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


# No quoted text may open or close one of the fences (FENCES) the templates put around it.
QUOTED = Neutraliser(fence_pattern(FENCES) + "|" + CONTROL)
TITLE_CHARS = 160


def fenced(text: str) -> str:
    """Quoted text as it goes inside a fence (<passages>, <answer>, <question>, <reference>,
    <candidate>...): a tag in it that would close (or reopen) any fence, in any case, with attributes,
    zero-width or full-width characters, is defanged, and so is any chat-template control token
    (<|im_end|>, [INST], <end_of_turn>...): the text cannot step out into the instructions, nor end
    its turn. Text with neither comes back unchanged (ragtune.llm.control_tokens)."""
    return QUOTED(text)


def inline_title(text: str) -> str:
    """A chapter or section title as it is quoted inside the instructions: one line, no fence tags,
    no quotes to close, at most TITLE_CHARS characters, so a crafted heading cannot add instructions."""
    flat = " ".join(fenced(text).replace('"', "'").split())
    return flat if len(flat) <= TITLE_CHARS else flat[: TITLE_CHARS - 1].rstrip() + "…"


def detect_language(text: str) -> str:
    """'zh' when CJK characters make up at least a third of the letters, else 'en': the two packs we ship."""
    sample = text[:20000]
    letters = len(LETTER.findall(sample))
    return "zh" if letters and len(CJK.findall(sample)) / letters >= 1 / 3 else "en"


def task_template(task: str, language: str) -> str:
    if task not in TASK_STYLES:
        raise ValueError(f"unknown task {task!r}; tasks are {', '.join(TASK_STYLES)}")
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


def format_passages(evidence: list[dict[str, Any]]) -> str:
    """Numbered evidence passages with their section, each fenced: the block every template cites.
    No page numbers: they are provenance, kept on the row, and a prompt without them stays the same
    when an edit elsewhere moves the pagination, so that rerun is answered from the cache."""
    return "\n\n".join(
        f"[{n}] ({inline_title(' > '.join(e['section_path']))}) {fenced(e['text'])}"
        for n, e in enumerate(evidence, start=1)
    )
