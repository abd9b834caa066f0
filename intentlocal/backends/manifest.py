"""The model manifest: which PyPI carriers hold which model, and how to check it."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intentlocal import paths
from intentlocal.errors import ModelError


@dataclass(frozen=True)
class Part:
    package: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class FileSpec:
    path: str
    parts: tuple[Part, ...]
    sha256: str | None = None
    size: int | None = None
    unpack: bool = False
    members: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VariantSpec:
    """A file derived on this machine from the model's verified GGUF by llama.cpp's
    quantiser (``requantize`` names the target type, e.g. "Q4_0"), checked against
    ``sha256`` like a fetched file."""

    name: str
    requantize: str
    path: str
    sha256: str
    notes: str = ""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: str
    default: bool
    upstream: str
    license: str
    notes: str
    files: tuple[FileSpec, ...]
    export: str | None = None
    embedder: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, VariantSpec] = field(default_factory=dict)

    @property
    def download_size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s)


def load_manifest(path: Path | None = None) -> dict[str, ModelSpec]:
    path = path or paths.manifest_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"model manifest not found at {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"model manifest {path} is not valid TOML: {exc}") from exc
    models: dict[str, ModelSpec] = {}
    for name, m in raw.get("models", {}).items():
        files = tuple(
            FileSpec(
                path=f["path"],
                parts=tuple(Part(**p) for p in f["parts"]),
                sha256=f.get("sha256"),
                size=f.get("size"),
                unpack=bool(f.get("unpack", False)),
                members=dict(f.get("members", {})),
            )
            for f in m["files"]
        )
        models[name] = ModelSpec(
            name=name,
            role=m["role"],
            default=bool(m.get("default", False)),
            upstream=m.get("upstream", ""),
            license=m.get("license", ""),
            notes=m.get("notes", ""),
            files=files,
            export=m.get("export"),
            embedder=dict(m.get("embedder", {})),
            variants={
                v: VariantSpec(name=v, requantize=d["requantize"], path=d["path"],
                               sha256=d["sha256"], notes=d.get("notes", ""))
                for v, d in m.get("variants", {}).items()
            },
        )
    return models


def default_model(role: str, manifest: dict[str, ModelSpec] | None = None) -> str:
    manifest = manifest or load_manifest()
    for spec in manifest.values():
        if spec.role == role and spec.default:
            return spec.name
    raise ModelError(f"the manifest names no default {role}")
