"""LLM variants derived on this machine: a fetched GGUF requantised by llama.cpp.

Why: prompt evaluation is almost all of a run, and its speed depends on the weight
type as much as on the model. The 0.5B label writer ships only as Q4_K_M; llama.cpp's
CPU kernels evaluate Q4_0 weights 1.6x faster on the 2-core machines measured
(scripts/prompt_rate.py: 314 against 193 prompt tokens/s), so a Q4_0 copy is a speed
lever. No model hub exists here, so the copy is made from the verified file, with
llama.cpp's own quantiser (one thread: the output is then byte-for-byte
reproducible), and checked against the SHA-256 the manifest records, like a fetched
file. A different llama.cpp build may quantise differently: since Q4_0 is the default
label writer, such a copy is kept with a warning, its own hash recorded beside it and
put in the model id; a copy changed after it was made is refused.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from intentlocal.backends.fetch import sha256_file
from intentlocal.backends.manifest import VariantSpec
from intentlocal.errors import ModelError

FTYPES = {"Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0", "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0"}


def derive(source: Path, variant: VariantSpec, target: Path) -> Path:
    """``target``, made from ``source`` if missing and verified either way."""
    if target.is_file():
        _verify(target, variant, target)
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
    # One partial file per process: two first runs started together (a TUI and a CLI)
    # would otherwise both write one ".partial" and one could rename the other's half-
    # written file into place. Each writes its own; the renames are atomic, and both
    # copies are the same verified bytes, so whichever lands last is as good.
    fd, name = tempfile.mkstemp(prefix=target.name + ".", suffix=".partial", dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        rc = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
        if rc != 0 or not partial.is_file() or partial.stat().st_size == 0:
            raise ModelError(f"llama.cpp could not requantise {source.name} to "
                             f"{variant.requantize} (code {rc})")
        _verify(partial, variant, target)
        partial.chmod(0o644)  # mkstemp made it private; models are not secrets
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def sidecar(target: Path) -> Path:
    """Where the hash of a copy this build made differently is kept (see _verify)."""
    return target.with_name(target.name + ".sha256")


def own_hash(target: Path) -> str | None:
    """The SHA-256 of a copy that differs from the manifest's, as this build made it;
    None for the measured bytes. The registry puts it in the model id, so a stored run
    says which bytes wrote its labels."""
    side = sidecar(target)
    return side.read_text(encoding="ascii").strip() if side.is_file() else None


def _verify(path: Path, variant: VariantSpec, target: Path) -> None:
    """``path`` is ``target`` itself, or the copy just made that will become it."""
    got = sha256_file(path)
    if got == variant.sha256:
        return
    if path != target:  # made just now
        # Another llama.cpp build (another CPU family, Metal) may round differently. The
        # variant is a default, so refusing it would stop a first run; the copy is kept,
        # its own hash recorded (and checked from then on), and the user told.
        sidecar(target).write_text(got + "\n", encoding="ascii")
        warnings.warn(
            f"this llama.cpp build made a {variant.name} copy with SHA-256 {got[:12]}..., "
            f"not the measured {variant.sha256[:12]}...: its labels may be worded "
            "differently from the published runs",
            stacklevel=3,
        )
        return
    if got == own_hash(target):
        return
    raise ModelError(f"{path} has SHA-256 {got}, expected {variant.sha256}: it was changed "
                     "or cut short",
                     hint=f"delete {path} (and {sidecar(target).name} beside it, if there "
                     "is one); it is made again on next use")
