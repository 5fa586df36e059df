"""Prompt templates are files in ragtune/prompts; their hash goes into every cache key via the rendered text."""

from __future__ import annotations

import hashlib
from pathlib import Path

PROMPT_DIR = Path(__file__).parent / "prompts"


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
