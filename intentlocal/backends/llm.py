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

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from intentlocal.backends.base import Generation, Grammar, Message
from intentlocal.errors import ModelError

_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_has_amx() -> bool:
    """Whether this llama.cpp build carries its AMX kernels (compiled in where the
    build machine has AMX, as a from-source pip install does with -march=native)."""
    import llama_cpp

    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def patched_model_params(**overrides: Any) -> Iterator[None]:
    """llama-cpp-python's ``Llama`` exposes no switch for some llama.cpp model
    parameters (``use_extra_bufts``), so its default-params factory is wrapped for the
    duration of one load. Loads are serialised by a module lock: the patch is global."""
    import llama_cpp.llama_cpp as lc

    with _PATCH_LOCK:
        original = lc.llama_model_default_params

        def patched() -> Any:
            params = original()
            for key, value in overrides.items():
                setattr(params, key, value)
            return params

        lc.llama_model_default_params = patched
        try:
            yield
        finally:
            lc.llama_model_default_params = original


def load_llama(path: str | Path, extra_buffers: bool | None = None, **kwargs: Any) -> Any:
    """A ``llama_cpp.Llama`` loaded the one way intentlocal loads it, for the generator
    and the measuring scripts alike. ``extra_buffers=None``: llama.cpp's extra weight
    buffers (repacked layouts, AMX) except in a build with AMX kernels, whose first
    decode segfaulted on a 2-core Sapphire Rapids VM (the process dies: nothing to
    catch); without them the 0.5B model evaluated 171-197 prompt tok/s there
    (scripts/prompt_rate.py)."""
    from llama_cpp import Llama

    extra = extra_buffers if extra_buffers is not None else not build_has_amx()
    with patched_model_params(use_extra_bufts=extra):
        return Llama(model_path=str(path), **kwargs)


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
        n_ubatch: int = 512,
        flash_attn: bool = False,
        n_gpu_layers: int = 0,
        seed: int = 0,
        temperature: float = 0.0,
        reuse_prefix: bool = True,
        fast_grammar: bool = True,
        extra_buffers: bool | None = None,
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
        self.n_ubatch = n_ubatch
        self.flash_attn = flash_attn
        self.reuse_prefix = reuse_prefix
        self.fast_grammar = fast_grammar
        self.extra_buffers = extra_buffers  # None: see load_llama
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
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            llm = load_llama(
                self.path,
                self.extra_buffers,
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads_batch,
                n_batch=self.n_batch,
                n_ubatch=self.n_ubatch,
                flash_attn=self.flash_attn,
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
            if static_messages and self.reuse_prefix:
                static = self._tokens(static_messages, static=True)
                while (
                    prefix_len < min(len(static), len(full) - 1)
                    and static[prefix_len] == full[prefix_len]
                ):
                    prefix_len += 1
            prefix = full[:prefix_len]
            if prefix != self._prefix or not prefix:
                llm.reset()
                if prefix:
                    llm.eval(prefix)
                self._prefix = prefix
            llm.n_tokens = prefix_len  # forget the previous call's variable part
            started = time.perf_counter()
            try:
                if self.fast_grammar and self.temperature == 0.0:
                    text, n_out = self._greedy(full[prefix_len:], grammar, max_tokens)
                    usage = {"prompt_tokens": len(full), "completion_tokens": n_out}
                else:
                    out = llm.create_completion(
                        prompt=full,
                        max_tokens=max_tokens,
                        temperature=self.temperature,
                        seed=self.seed,
                        grammar=self._grammar(grammar),
                    )
                    text, usage = out["choices"][0]["text"], out.get("usage", {})
            except ModelError:
                raise
            except Exception as exc:
                raise ModelError(f"llama.cpp generation failed: {exc}") from exc
            seconds = time.perf_counter() - started
            return Generation(
                text=text,
                prompt_tokens=int(usage.get("prompt_tokens", len(full))),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                seconds=seconds,
                cached_tokens=prefix_len,
            )

    def _greedy(self, suffix: Sequence[int], grammar: Grammar, max_tokens: int) -> tuple[str, int]:
        """Greedy decoding under the grammar, checking the grammar lazily.

        llama-cpp-python's sampler chain runs the grammar over the whole vocabulary
        (151k tokens for Qwen) before every token: about 29 ms a token here, a
        tenth of a label call. Greedy decoding only needs the best token the
        grammar allows, so the best few tokens are checked one by one, best first,
        and the whole vocabulary only when none of them is allowed. The token
        chosen is the one the full chain would choose (the highest logit among
        allowed tokens, ties to the lower id), so outputs do not change.
        """
        import ctypes

        import llama_cpp
        import numpy as np

        llm = self._llm
        vocab = llm._model.vocab
        n_vocab = llm.n_vocab()
        smpl = llama_cpp.llama_sampler_init_grammar(
            vocab, grammar.gbnf.encode("utf-8"), b"root"
        )
        if not smpl:
            raise ModelError(f"grammar {grammar.name} does not compile")
        one = (llama_cpp.llama_token_data * 1)()
        one_arr = llama_cpp.llama_token_data_array(
            data=one, size=1, selected=-1, sorted=False
        )
        out: list[int] = []
        try:
            llm.eval(list(suffix))
            for _ in range(max_tokens):
                ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
                logits = np.ctypeslib.as_array(ptr, shape=(n_vocab,))
                top = np.argpartition(-logits, 32)[:32]
                top = top[np.lexsort((top, -logits[top]))]
                token = -1
                for tid in top:
                    one[0].id, one[0].logit, one[0].p = int(tid), float(logits[tid]), 0.0
                    one_arr.size, one_arr.selected = 1, -1
                    llama_cpp.llama_sampler_apply(smpl, ctypes.byref(one_arr))
                    if np.isfinite(one[0].logit):
                        token = int(tid)
                        break
                if token < 0:
                    token = self._grammar_argmax(smpl, logits)
                llama_cpp.llama_sampler_accept(smpl, token)
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                out.append(token)
                llm.eval([token])
        finally:
            llama_cpp.llama_sampler_free(smpl)
        text = llm.detokenize(out).decode("utf-8", errors="replace")
        return text, len(out)

    @staticmethod
    def _grammar_argmax(smpl: Any, logits: Any) -> int:
        """The slow path: the grammar over the whole vocabulary, then the best token left."""
        import ctypes

        import llama_cpp
        import numpy as np

        n = len(logits)
        data = (llama_cpp.llama_token_data * n)()
        view = np.ctypeslib.as_array(data).view(
            np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
        )
        view["id"] = np.arange(n, dtype=np.int32)
        view["logit"] = logits
        view["p"] = 0.0
        arr = llama_cpp.llama_token_data_array(data=data, size=n, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(smpl, ctypes.byref(arr))
        kept = view["logit"]
        if not np.isfinite(kept).any():
            raise ModelError("the grammar allows no token here")
        return int(np.argmax(np.where(np.isfinite(kept), kept, -np.inf)))
