"""A dataset row as chat turns, and as the prompt text a tokenizer's chat template makes of them:
one formatting for training (the LoRA loss mask) and for answering at evaluation, so the tuned model
is asked exactly as it was taught."""

from __future__ import annotations


def chat_messages(instruction: str, context: str = "", history: list | None = None) -> list[dict[str, str]]:
    """An alpaca row as chat turns: earlier dialogue turns first, then the question (with its input)."""
    messages = []
    for user, assistant in history or []:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    user = f"{instruction}\n\n{context}".strip() if context else instruction
    return messages + [{"role": "user", "content": user}]


def last_clinician_turn(turns: list[dict[str, str]]) -> int:
    """The index of a dialogue's last clinician turn: the one a thinking prefix or a reviewer's edit goes to."""
    return max(i for i, t in enumerate(turns) if t["role"] == "clinician")


def prompt_text(tokenizer, instruction: str, context: str = "", history: list | None = None) -> str:
    return tokenizer.apply_chat_template(chat_messages(instruction, context, history), tokenize=False, add_generation_prompt=True)
