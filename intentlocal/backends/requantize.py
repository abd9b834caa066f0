"""LLM variants derived on this machine: a fetched GGUF requantised by llama.cpp.

Why: prompt evaluation is almost all of a run, and its speed depends on the weight
type as much as on the model. The 0.5B label writer ships only as Q4_K_M; llama.cpp's
CPU kernels evaluate Q4_0 weights 1.6x faster on the 2-core machines measured
(scripts/prompt_rate.py: 314 against 193 prompt tokens/s), so a Q4_0 copy is a speed
lever. No model hub exists here, so the copy is made from the verified file, with
llama.cpp's own quantiser (one thread: the output is then byte-for-byte
reproducible), and checked against the SHA-256 the manifest records, like a fetched
file. A different llama.cpp build may quantise differently: that is refused with a
clear message rather than run unverified.
"""

from __future__ import annotations

import os
from pathlib import Path

from intentlocal.backends.fetch import sha256_file
from intentlocal.backends.manifest import VariantSpec
from intentlocal.errors import ModelError

FTYPES = {"Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0", "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0"}


def derive(source: Path, variant: VariantSpec, target: Path) -> Path:
    """``target``, made from ``source`` if missing and verified either way."""
    if target.is_file():
        _verify(target, variant, made_now=False)
        return target
    if variant.requantize not in FTYPES:
        raise ModelError(f"variant {variant.name}: cannot requantise to {variant.requantize!r}; "
                         f"known: {', '.join(FTYPES)}")
    import llama_cpp
    import llama_cpp._logger as llama_log

    llama_log.set_verbose(False)  # its per-tensor report is noise to a user
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = 1  # several threads may order the work differently: keep it exact
    params.ftype = getattr(llama_cpp, FTYPES[variant.requantize])
    params.allow_requantize = True
    partial = target.with_name(target.name + ".partial")
    rc = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
    if rc != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise ModelError(f"llama.cpp could not requantise {source.name} to "
                         f"{variant.requantize} (code {rc})")
    _verify(partial, variant, made_now=True)
    os.replace(partial, target)
    return target


def _verify(path: Path, variant: VariantSpec, made_now: bool) -> None:
    got = sha256_file(path)
    if got == variant.sha256:
        return
    if made_now:
        path.unlink(missing_ok=True)
        raise ModelError(
            f"the {variant.name} copy this llama.cpp build made has SHA-256 {got}, not the "
            f"{variant.sha256} that was measured",
            hint="this llama-cpp-python quantises differently; use the model without "
            "the variant, or point --llm at a .gguf you made yourself",
        )
    raise ModelError(f"{path} has SHA-256 {got}, expected {variant.sha256}: it was changed "
                     "or cut short", hint=f"delete {path}; it is made again on next use")
