"""The two backend protocols. Each has one required method; weights load lazily.

Any object with these methods can be handed to the pipeline: another ONNX
embedder, another GGUF, or the fakes used by the unit tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised vectors (one row per text, float32)."""

    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def vectors_id(embedder: Embedder) -> str:
    """What the embedding cache keys an embedder's vectors by.

    Why not ``model_id`` alone: the same model file can give different vectors when a
    setting changes its arithmetic (OnnxEmbedder's int8 precision option), and a store's
    cache outlives the code that filled it; vectors cached before such a change must
    not be mixed with vectors made after it. An embedder says so through an optional
    ``vectors_id`` attribute; without one its model_id is the key.
    """
    return str(getattr(embedder, "vectors_id", None) or embedder.model_id)


def file_fingerprint(path: Path) -> str:
    """A short digest of a model file's size and its first and last MiB: what tells two
    user files of the same name apart in the store's caches (vectors, answers) without
    reading gigabytes. Manifest models need none: their bytes are checked at fetch.
    Read once per file version: the embedding cache asks for it at every embed call."""
    st = path.stat()
    return _fingerprint(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=32)
def _fingerprint(path: str, size: int, mtime_ns: int) -> str:
    import hashlib

    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user"
    content: str


@dataclass(frozen=True)
class Grammar:
    """A GBNF grammar with a stable id, so a label row can say which grammar made it."""

    name: str
    gbnf: str

    def __post_init__(self) -> None:
        # llama.cpp accepts [a-zA-Z0-9-] in rule names; a bad name does not raise
        # there, it leaves a null grammar that crashes the sampler. Fail here instead.
        import re

        for line in self.gbnf.splitlines():
            if "::=" in line:
                rule = line.split("::=")[0].strip()
                if not re.fullmatch(r"[a-zA-Z0-9-]+", rule):
                    raise ValueError(f"grammar {self.name}: invalid GBNF rule name {rule!r}")

    @property
    def grammar_id(self) -> str:
        import hashlib

        return f"{self.name}:{hashlib.sha256(self.gbnf.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class Request:
    """One generation call, for backends that decode several calls together."""

    static_messages: Sequence[Message]
    messages: Sequence[Message]
    grammar: Grammar
    max_tokens: int = 48


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cached_tokens: int = 0
    reused_seconds: float | None = None
    """Set when the answer was not decoded but reused (pipeline.reuse): the seconds
    the call that first wrote it took, so a run can say what its labels cost."""


@runtime_checkable
class Generator(Protocol):
    """A chat model whose output is constrained by a grammar.

    ``static_messages`` is the part of the prompt shared by every call of a kind
    (system prompt, instructions); backends with a KV cache keep it evaluated.
    """

    model_id: str

    def generate(
        self,
        static_messages: Sequence[Message],
        messages: Sequence[Message],
        grammar: Grammar,
        max_tokens: int = 48,
    ) -> Generation: ...


def conversation(
    static_messages: Sequence[Message], messages: Sequence[Message]
) -> list[Message]:
    """The chat a call sends. When the last static message and the first variable one
    have the same role they are one message split where its data begins (the user
    turn's fixed head, "Message:", is static): joined here, so a backend with a KV
    cache can keep that head evaluated with the system prompt."""
    if static_messages and messages and static_messages[-1].role == messages[0].role:
        joined = Message(messages[0].role, static_messages[-1].content + messages[0].content)
        return [*static_messages[:-1], joined, *messages[1:]]
    return [*static_messages, *messages]


def request_key(model_id: str, request: Request, temperature: float) -> str:
    """What makes two calls the same question: the model, the whole chat as the model
    sees it (conversation, so where the static head is cut does not matter), the
    grammar and the token budget. At temperature 0 the same question gets the same
    answer, which is what lets a run reuse an answer instead of decoding it again."""
    import hashlib
    import json

    chat = [[m.role, m.content] for m in conversation(request.static_messages,
                                                        request.messages)]
    blob = json.dumps([model_id, request.grammar.grammar_id, request.max_tokens,
                       float(temperature), chat], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def generate_all(generator: Generator, requests: Sequence[Request]) -> list[Generation]:
    """The requests' generations, in order: decoded together when the backend can
    (``generate_many``, one llama.cpp decode steps every sequence), else one by one,
    so any object with ``generate`` stays a valid label writer."""
    many = getattr(generator, "generate_many", None)
    if many is not None:
        return list(many(requests))
    return [
        generator.generate(r.static_messages, r.messages, r.grammar, r.max_tokens)
        for r in requests
    ]
