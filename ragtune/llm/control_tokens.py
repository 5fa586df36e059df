"""Chat-template control tokens and fence tags in quoted text, defanged before a prompt is rendered.

A backend renders the chat template to one string and tokenizes it with special tokens parsed
(llama.cpp, vLLM, any server), so `<|im_end|>` in a document would end the user's turn. Matches
are found on a folded copy of the text (NFKC, so full-width forms count; invisible format
characters such as zero-width spaces dropped), since some tokenizers normalise before matching
and a model reads the variants alike. A match keeps its text but trades its brackets for look-alikes
no tokenizer treats as markup (< > to ‹ ›, [ ] to ⟦ ⟧). Text without a match comes back as the same
string: prompts, and so the LLM cache keys hashed from them, do not change for clean documents.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable, Iterable

# Every character whose NFKC form holds a bracket (tests/test_control_tokens.py checks it against
# all of Unicode): text with none of them and none of "<[" holds no match, and skips folding.
BRACKET_VARIANTS = "\ufe47\ufe48\ufe64\ufe65\uff1c\uff1e\uff3b\uff3d"
TRIGGER = re.compile("[<\\[" + BRACKET_VARIANTS + "]")
DEFANG = {"<": "‹", ">": "›", "[": "⟦", "]": "⟧"}
WORD_JOINER = "\u2060"  # splits a control token that has no bracket to trade (none in the models we ship)

# The fences every template puts around material it quotes (evidence, references, generated or
# model answers): fenced() defangs them in quoted text; in a whole message they are ours, and stay.
FENCES = ("passages", "answer", "question", "reference", "candidate", "candidate_a", "candidate_b", "examples")

# The control tokens of the common templates, as text: `<|name|>` (ChatML, Qwen, SmolLM2, Llama 3,
# Phi, Command-R; DeepSeek's `<｜name｜>` folds to it), `<snake_case>` (Gemma's turns, StarCoder's and
# SmolLM2's code tokens) but for our fences, named SentencePiece and tool tokens, Llama 2's and Mistral's brackets.
CONTROL = (
    r"<\|[^\s<>|]{1,80}\|>"
    r"|</?(?:s|bos|eos|pad|unk|mask|sep|cls|think|filename|reponame|unused\d+)>"
    r"|</?(?!(?:" + "|".join(FENCES) + r")>)[a-z][a-z0-9]*(?:_[a-z0-9]+)+>"
    r"|<</?SYS>>"
    r"|\[/?(?:INST|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS|TOOL_CONTENT|IMG|IMG_BREAK|IMG_END|PREFIX|MIDDLE|SUFFIX)\]"
)


def fence_pattern(names: Iterable[str]) -> str:
    """An opening or closing fence tag in any case, spacing or attributes: `</passages x=1>`."""
    alternatives = "|".join(sorted(names, key=len, reverse=True))
    return rf"(?i:<\s*/?\s*(?:{alternatives})(?=[\s/>])[^<>]{{0,200}}>)"


def fold(text: str) -> tuple[str, list[int] | None]:
    """(the text as a normalising tokenizer or a reader sees it, the index in `text` of each of its
    characters; None where they are the same string)."""
    if text.isascii():
        return text, None
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if unicodedata.category(ch) == "Cf":  # zero-width spaces and joiners, BOM, bidi marks, soft hyphen
            continue
        folded = unicodedata.normalize("NFKC", ch)
        chars.append(folded)
        where.extend([i] * len(folded))
    return "".join(chars), where


class Neutraliser:
    """Defangs every match of `pattern` (on the folded text) and every bracketless token in `exact`."""

    def __init__(self, pattern: str, exact: Iterable[str] = ()):
        self.pattern = re.compile(pattern)
        self.exact = sorted(set(exact), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        if TRIGGER.search(text):
            text = self._defang(text)
        for token in self.exact:
            if token in text:
                text = text.replace(token, token[0] + WORD_JOINER + token[1:])
        return text

    def _defang(self, text: str) -> str:
        folded, where = fold(text)
        spans = [(m.start(), m.end()) for m in self.pattern.finditer(folded)]
        if not spans:
            return text
        chars = list(text)
        for start, end in spans:
            first, last = (start, end - 1) if where is None else (where[start], where[end - 1])
            for i in range(first, last + 1):
                bracket = unicodedata.normalize("NFKC", chars[i])
                chars[i] = DEFANG.get(bracket, chars[i])
        return "".join(chars)

    def messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Chat messages with their text content neutralised (our templates hold no control token, so
        the whole content is safe to pass: tests/test_control_tokens.py renders each to check)."""
        return [{**m, "content": self(m["content"])} if isinstance(m.get("content"), str) else m for m in messages]


STATIC = Neutraliser(CONTROL)  # what any backend gets: an endpoint's vocabulary is not known here


def vocabulary_neutraliser(tokens: Iterable[str]) -> Neutraliser:
    """STATIC plus every special token text of one model's vocabulary. Tokens without a letter or a
    digit (whitespace runs some vocabularies add) are ordinary text; a bracketless one is split."""
    texts = {t for t in tokens if len(t) > 1 and any(c.isalnum() for c in t)}
    bracketed = {t for t in texts if TRIGGER.search(t)}
    literal = "|".join(re.escape(t) for t in sorted({fold(t)[0] for t in bracketed}, key=len, reverse=True))
    return Neutraliser(CONTROL + (f"|{literal}" if literal else ""), texts - bracketed)


def llama_special_tokens(llama: Any) -> list[str]:
    """The text of every control and unknown token of a llama_cpp.Llama, and of its user-defined tokens
    that look like markup (`<tool_call>`): its tokenizer matches each as one token in text, user-defined
    ones even with special=False. A user-defined plain word is ordinary text, and is left alone."""
    import llama_cpp

    special = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
    model = llama._model
    texts = [(model.token_get_attr(i), model.token_get_text(i)) for i in range(model.n_vocab())]
    return [t for kind, t in texts if kind & special or kind & llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED and TRIGGER.search(t)]


def hf_special_tokens(tokenizer: Any) -> list[str]:
    """A transformers tokenizer's special tokens, and its other added tokens that look like markup:
    it matches every added token in text."""
    added: Callable[[], dict[str, int]] | None = getattr(tokenizer, "get_added_vocab", None)
    markup = [t for t in (added() if added else {}) if TRIGGER.search(t)]
    return list(getattr(tokenizer, "all_special_tokens", None) or []) + markup
