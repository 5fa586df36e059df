"""Reasoning models (DeepSeek-R1, QwQ, Qwen3 thinking) write a thinking block before their answer:
inline as <think>…</think>, or in a separate `reasoning_content` / `reasoning` field of the message.
It is split off before the answer is parsed, and kept (on the row as `reasoning`, in the ledger)."""

from __future__ import annotations

import re

TAGS = "think|thinking|reasoning"
OPENING = re.compile(rf"^\s*<({TAGS})>", re.I)
BLOCK = re.compile(rf"<({TAGS})>(.*?)</\1>\s*", re.I | re.S)
CLOSING = re.compile(rf"</({TAGS})>\s*", re.I)
UNFINISHED = "the model's reasoning did not finish within max_tokens (no closing </think>): raise max_tokens for a reasoning model"


def split_reasoning(text: str, reasoning_field: str | None = None) -> tuple[str, str, bool]:
    """(answer, reasoning, finished). Handles a block anywhere before the answer, several blocks, a
    closing tag without its opening one (templates that open <think> in the prompt, as Qwen3's and
    R1's do) and an opening tag never closed (max_tokens hit while thinking: no answer, finished False)."""
    parts = [reasoning_field.strip()] if reasoning_field and reasoning_field.strip() else []
    if OPENING.match(text) is None and (closing := CLOSING.search(text)) and "{" not in text[: closing.start()]:
        parts.append(text[: closing.start()].strip())  # the opening tag was in the prompt
        text = text[closing.end():]
    parts += [m.group(2).strip() for m in BLOCK.finditer(text)]
    text = BLOCK.sub("", text)
    opened = OPENING.search(text)
    if opened:  # never closed
        parts.append(text[opened.end():].strip())
        return "", "\n\n".join(p for p in parts if p), False
    return text.strip(), "\n\n".join(p for p in parts if p), True
