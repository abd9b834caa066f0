"""Turns a model reference (a manifest name or a local path) into a backend.

A user can always skip the manifest and point at any local .gguf file or ONNX
folder; names are resolved against fetched models with a hint when missing.
"""

from __future__ import annotations

from pathlib import Path

from intentlocal.backends.fetch import is_installed, model_dir
from intentlocal.backends.manifest import load_manifest
from intentlocal.errors import ModelError


def _split_variant(ref: str) -> tuple[str, str | None]:
    if ":" in ref and not Path(ref).exists():
        name, variant = ref.rsplit(":", 1)
        return name, variant or None
    return ref, None


def is_llm_path(ref: str) -> bool:
    """An LLM reference naming a user's file rather than a manifest model: such a file's
    name says nothing of its bytes (the caches key it by a fingerprint)."""
    p = Path(ref).expanduser()
    return p.suffix == ".gguf" or p.exists()


def resolve_llm_path(ref: str) -> tuple[Path, str]:
    """Path to the GGUF file and a stable model id. ``NAME:VARIANT`` names a copy
    requantised from the fetched file (made on first use, see requantize.py)."""
    p = Path(ref).expanduser()
    if is_llm_path(ref):
        if not p.is_file():
            raise ModelError(f"LLM file {p} does not exist")
        return p, p.name
    name, variant = _split_variant(ref)
    manifest = load_manifest()
    if name not in manifest or manifest[name].role != "llm":
        llms = [n for n, s in manifest.items() if s.role == "llm"]
        raise ModelError(f"unknown LLM {ref!r}: give a .gguf path or one of {', '.join(llms)}")
    spec = manifest[name]
    if variant is not None and variant not in spec.variants:
        known = ", ".join(f"{name}:{v}" for v in spec.variants) or "none"
        raise ModelError(f"the LLM {name} has no variant {variant!r} (known: {known})")
    if not is_installed(name):
        raise ModelError(
            f"the LLM {name} is not fetched yet", hint=f"intentlocal models fetch {name}"
        )
    source = model_dir(name) / spec.files[0].path
    if variant is None:
        return source, ref
    from intentlocal.backends.requantize import derive, own_hash

    v = spec.variants[variant]
    path = derive(source, v, model_dir(name) / v.path)
    differs = own_hash(path)
    return path, (f"{ref}@{differs[:12]}" if differs else ref)


def is_embedder_path(name: str) -> bool:
    """An embedder reference naming a folder or file rather than a manifest model."""
    return Path(name).expanduser().exists() or "/" in name or name.endswith(".onnx")


def resolve_embedder_path(ref: str) -> tuple[Path, str | None, str]:
    """Folder (or .onnx file), variant, and a stable model id."""
    name, variant = _split_variant(ref)
    p = Path(name).expanduser()
    if is_embedder_path(name):
        if not p.exists():
            raise ModelError(f"embedder path {p} does not exist")
        return p, variant, str(p.name) + (f":{variant}" if variant else "")
    manifest = load_manifest()
    if name not in manifest or manifest[name].role != "embedder":
        embs = [n for n, s in manifest.items() if s.role == "embedder"]
        raise ModelError(
            f"unknown embedder {name!r}: give an ONNX folder or one of {', '.join(embs)}"
        )
    if not is_installed(name):
        raise ModelError(
            f"the embedder {name} is not fetched yet", hint=f"intentlocal models fetch {name}"
        )
    return model_dir(name), variant, ref


def load_embedder(ref: str, **kwargs):  # -> OnnxEmbedder
    from intentlocal.backends.onnx_embedder import OnnxEmbedder

    path, variant, model_id = resolve_embedder_path(ref)
    return OnnxEmbedder(path, variant=variant, model_id=model_id,
                        own_files=is_embedder_path(_split_variant(ref)[0]), **kwargs)


def load_llm(ref: str, **kwargs):  # -> LlamaCppGenerator
    from intentlocal.backends.llm import LlamaCppGenerator

    path, model_id = resolve_llm_path(ref)
    return LlamaCppGenerator(path, model_id=model_id, own_file=is_llm_path(ref), **kwargs)
