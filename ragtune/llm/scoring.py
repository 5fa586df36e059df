"""Teacher-forced scores from a local GGUF through llama.cpp: the log-probability of a given
continuation after a chat prompt, and a judge's probability of "yes" over "no" read from the
first answer token's distribution (not its argmax, which said "no" to everything in the fit
issue's trial). Successive prompts that share a prefix (the same evidence, other questions)
reuse the KV cache of that prefix.
"""

from __future__ import annotations

import math
import os
from functools import cached_property

import numpy as np

from ragtune.llm.control_tokens import Neutraliser, llama_special_tokens, vocabulary_neutraliser

YES, NO = ("yes", "Yes", " yes", " Yes", "YES"), ("no", "No", " no", " No", "NO")


class TokenScorer:
    def __init__(self, model: str | None = None, n_ctx: int = 2048, n_threads: int | None = None):
        from ragtune.llm.local_models import resolve_gguf

        self.model_path = resolve_gguf(model)
        self.n_ctx, self.n_threads = n_ctx, n_threads or max(1, os.cpu_count() or 1)

    @cached_property
    def llama(self):
        from llama_cpp import Llama

        return Llama(model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads, logits_all=True, verbose=False)

    @cached_property
    def formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llama = self.llama
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{self.model_path} has no chat template in its metadata")
        text = llama._model.token_get_text
        return Jinja2ChatFormatter(template, text(llama.token_eos()), text(llama.token_bos()) if llama.token_bos() != -1 else "")

    @cached_property
    def neutralise(self) -> Neutraliser:
        """As LlamaCppBackend.neutralise: the prompt is tokenized with special tokens parsed."""
        return vocabulary_neutraliser(llama_special_tokens(self.llama))

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        prompt = self.formatter(messages=self.neutralise.messages(messages)).prompt
        return self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def _eval(self, tokens: list[int]) -> np.ndarray:
        """Logits of every position of tokens, evaluating only what differs from the last call."""
        llama = self.llama
        if len(tokens) > self.n_ctx:
            raise ValueError(f"{len(tokens)} tokens exceed the scorer's context of {self.n_ctx}")
        done = llama.input_ids[: llama.n_tokens].tolist()
        common = 0
        for a, b in zip(done, tokens):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # the last token is always evaluated: its logits are needed
        llama.n_tokens = common
        llama.eval(tokens[common:])
        return llama.scores[: len(tokens)]

    def continuation_logprob(self, messages: list[dict[str, str]], continuation: str) -> tuple[float, int]:
        """(sum of log P(token) over the continuation's tokens, token count) as the assistant's reply."""
        prompt = self.prompt_tokens(messages)
        answer = self.llama.tokenize(continuation.encode("utf-8"), add_bos=False, special=False)
        logits = self._eval(prompt + answer)
        total = 0.0
        for k, token in enumerate(answer):
            row = logits[len(prompt) + k - 1].astype(np.float64)
            top = row.max()
            total += float(row[token] - top - math.log(np.exp(row - top).sum()))
        return total, len(answer)

    @cached_property
    def _yes_no_ids(self) -> tuple[list[int], list[int]]:
        def first(words: tuple[str, ...]) -> list[int]:
            ids = {self.llama.tokenize(w.encode(), add_bos=False, special=False)[0] for w in words}
            return sorted(ids)

        return first(YES), first(NO)

    def yes_probability(self, messages: list[dict[str, str]]) -> float:
        """P(yes) / (P(yes) + P(no)) for the reply's first token."""
        prompt = self.prompt_tokens(messages)
        row = self._eval(prompt)[len(prompt) - 1].astype(np.float64)
        yes_ids, no_ids = self._yes_no_ids
        top = max(row[yes_ids].max(), row[no_ids].max())
        yes, no = np.exp(row[yes_ids] - top).sum(), np.exp(row[no_ids] - top).sum()
        return float(yes / (yes + no))

    def option_probabilities(self, messages: list[dict[str, str]], replies: list[str]) -> list[float]:
        """The judge's probabilities of alternative replies, each scored whole (teacher-forced) and
        normalised over the alternatives: G-Eval's probability-weighted reading, not the argmax. The
        replies share the prompt, so the KV cache evaluates it once."""
        logps = np.array([self.continuation_logprob(messages, reply)[0] for reply in replies], dtype=np.float64)
        weights = np.exp(logps - logps.max())
        return (weights / weights.sum()).tolist()
