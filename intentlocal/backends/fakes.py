"""Deterministic in-process stand-ins for the embedder and the LLM.

They honour the same contracts as the real backends (normalised vectors;
outputs the grammar would accept), so the pipeline, the store and the TUI can
be tested quickly and offline. They record their calls for assertions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import numpy as np

from intentlocal.backends.base import Generation, Grammar, Message, conversation

_WORD = re.compile(r"[a-z]+")
_STOP = {
    "a",
    "an",
    "the",
    "i",
    "my",
    "me",
    "is",
    "to",
    "of",
    "and",
    "it",
    "in",
    "on",
    "for",
    "do",
    "can",
    "how",
    "what",
    "why",
    "was",
    "has",
    "have",
    "be",
    "you",
    "your",
    "this",
    "that",
    "with",
    "not",
    "am",
    "are",
    "at",
    "please",
    "still",
    "yet",
    "did",
    "get",
}


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


class FakeEmbedder:
    """Bag-of-words vectors hashed into ``dim`` buckets: similar words, similar vectors."""

    def __init__(self, dim: int = 64, model_id: str = "fake-embedder") -> None:
        self.dim = dim
        self.model_id = model_id
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, text in enumerate(texts):
            words = content_words(text) or ["empty"]
            for w in words:
                h = int(hashlib.md5(w.encode()).hexdigest(), 16)
                out[r, h % self.dim] += 1.0
                out[r, (h >> 8) % self.dim] += 0.5
            out[r] /= np.linalg.norm(out[r])
        return out


Responder = Callable[[Sequence[Message], Grammar], str]


def _section(prompt: str, name: str) -> str:
    m = re.search(rf"{name}:\s*(.*)", prompt)
    return m.group(1).strip() if m else ""


def keyword_responder(messages: Sequence[Message], grammar: Grammar) -> str:
    """Labels a message by its first two content words; selects candidates sharing a word;
    names a cluster by the first label its prompt lists."""
    prompt = messages[-1].content
    if grammar.name.startswith("name"):  # a cluster's name: its most shared label
        m = re.search(r"^- ([a-z][a-z0-9_]*) \(\d+\)", prompt, re.MULTILINE)
        return m.group(1) if m else "other"
    target = _section(prompt, "Message")
    words = content_words(target)
    if grammar.name == "label":
        return "_".join(words[:2]) or "other"
    m = re.match(r"select(\d+)(?:max(\d+))?", grammar.name)
    n = int(m.group(1))  # type: ignore[union-attr]
    most = int(m.group(2)) if m and m.group(2) else n  # type: ignore[union-attr]
    chosen = []
    for line in prompt.splitlines():
        m = re.match(r"\s*(\d+)[.)]\s*(\S+)", line)
        if m and int(m.group(1)) <= n and set(m.group(2).split("_")) & set(words[:2]):
            chosen.append(int(m.group(1)))
    return ",".join(str(i) for i in sorted(set(chosen))[:most]) or "none"


class FakeGenerator:
    """A chat model that answers through ``responder`` and counts its calls."""

    def __init__(
        self, responder: Responder = keyword_responder, model_id: str = "fake-llm"
    ) -> None:
        self.responder = responder
        self.model_id = model_id
        self.calls: list[tuple[list[Message], Grammar]] = []

    def generate(
        self,
        static_messages: Sequence[Message],
        messages: Sequence[Message],
        grammar: Grammar,
        max_tokens: int = 48,
    ) -> Generation:
        msgs = conversation(static_messages, messages)
        self.calls.append((msgs, grammar))
        text = self.responder(msgs, grammar)
        n_prompt = sum(len(m.content.split()) for m in msgs)
        return Generation(
            text=text, prompt_tokens=n_prompt, completion_tokens=max(1, len(text) // 4), seconds=0.0
        )
