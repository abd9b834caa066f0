"""The label writer's engine: any GGUF through llama-cpp-python, grammar-constrained.

Why the KV-cache handling is explicit: llama-cpp-python reuses the longest
common token prefix with the previous prompt, which would make the work done
for a call depend on the call before it (and floating-point results on how the
prompt was split). Here the static prefix (system prompt, instructions) is
evaluated once on its own and every call is truncated back to exactly that
prefix before its variable part is evaluated, so a call's result depends only
on its own prompt: the same on a resumed run as on an uninterrupted one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from intentlocal.backends.base import Generation, Grammar, Message
from intentlocal.errors import ModelError

_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def default_threads() -> int:
    """The cores this process may use (its affinity), not every core of the machine."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS has no affinity API
        return max(1, os.cpu_count() or 1)


class LlamaCppGenerator:
    """Greedy (temperature 0 by default), seeded, grammar-constrained chat generation."""

    def __init__(
        self,
        path: str | Path,
        *,
        model_id: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        n_batch: int = 512,
        n_gpu_layers: int = 0,
        seed: int = 0,
        temperature: float = 0.0,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"LLM file {self.path} does not exist")
        self._check_magic()  # now, not at the first call: a bad file leaves no half-made run
        self.model_id = model_id or self.path.name
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.n_threads_batch = n_threads_batch or self.n_threads
        self.n_batch = n_batch
        self.n_gpu_layers = n_gpu_layers
        self.seed = seed
        self.temperature = temperature
        self._llm: Any = None
        self._grammars: dict[str, Any] = {}
        self._prefix: list[int] = []
        self._lock = threading.Lock()

    def _check_magic(self) -> None:
        try:
            with self.path.open("rb") as fh:
                magic = fh.read(4)
        except OSError as exc:
            raise ModelError(f"cannot read the LLM file {self.path}: {exc.strerror}") from exc
        if magic != b"GGUF":
            raise ModelError(
                f"{self.path} is not a GGUF file (it starts with {magic!r})",
                hint="give a .gguf model file, e.g. one fetched with `intentlocal models fetch`",
            )

    def _load(self) -> None:
        if self._llm is not None:
            return
        self._check_magic()
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            llm = Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads_batch,
                n_batch=self.n_batch,
                n_gpu_layers=self.n_gpu_layers,
                seed=self.seed,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp reports load failures as ValueError
            raise ModelError(f"llama.cpp cannot load {self.path}: {exc}") from exc
        template = llm.metadata.get("tokenizer.chat_template") or _CHATML

        def token_text(tid: int) -> str:
            return llm.detokenize([tid], special=True).decode("utf-8", errors="ignore")

        eos = token_text(llm.token_eos()) if llm.token_eos() >= 0 else ""
        bos = token_text(llm.token_bos()) if llm.token_bos() >= 0 else ""
        self._chat = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._chat_static = Jinja2ChatFormatter(
            template=template, eos_token=eos, bos_token=bos, add_generation_prompt=False
        )
        self._llm = llm

    def _grammar(self, grammar: Grammar) -> Any:
        cached = self._grammars.get(grammar.grammar_id)
        if cached is None:
            from llama_cpp import LlamaGrammar

            try:
                cached = LlamaGrammar.from_string(grammar.gbnf, verbose=False)
            except Exception as exc:
                raise ModelError(f"grammar {grammar.name} does not compile: {exc}") from exc
            self._grammars[grammar.grammar_id] = cached
        return cached

    def _tokens(self, messages: Sequence[Message], static: bool = False) -> list[int]:
        fmt = self._chat_static if static else self._chat
        text = fmt(messages=[{"role": m.role, "content": m.content} for m in messages]).prompt
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def render(self, static_messages: Sequence[Message], messages: Sequence[Message]) -> str:
        with self._lock:
            self._load()
            msgs = [{"role": m.role, "content": m.content} for m in [*static_messages, *messages]]
            return self._chat(messages=msgs).prompt

    def generate(
        self,
        static_messages: Sequence[Message],
        messages: Sequence[Message],
        grammar: Grammar,
        max_tokens: int = 48,
    ) -> Generation:
        with self._lock:
            self._load()
            llm = self._llm
            full = self._tokens([*static_messages, *messages])
            if len(full) + max_tokens > self.n_ctx:
                raise ModelError(
                    f"prompt of {len(full)} tokens does not fit the context of {self.n_ctx}"
                )
            prefix_len = 0
            if static_messages:
                static = self._tokens(static_messages, static=True)
                while (
                    prefix_len < min(len(static), len(full) - 1)
                    and static[prefix_len] == full[prefix_len]
                ):
                    prefix_len += 1
            prefix = full[:prefix_len]
            if prefix != self._prefix:
                llm.reset()
                if prefix:
                    llm.eval(prefix)
                self._prefix = prefix
            llm.n_tokens = prefix_len  # forget the previous call's variable part
            started = time.perf_counter()
            try:
                out = llm.create_completion(
                    prompt=full,
                    max_tokens=max_tokens,
                    temperature=self.temperature,
                    seed=self.seed,
                    grammar=self._grammar(grammar),
                )
            except Exception as exc:
                raise ModelError(f"llama.cpp generation failed: {exc}") from exc
            seconds = time.perf_counter() - started
            usage = out.get("usage", {})
            return Generation(
                text=out["choices"][0]["text"],
                prompt_tokens=int(usage.get("prompt_tokens", len(full))),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                seconds=seconds,
                cached_tokens=prefix_len,
            )
