"""Sentence embedder on onnxruntime + tokenizers: no torch at run time.

A model folder holds an ONNX graph, a tokenizer.json and, optionally, an
``intentlocal.json`` saying how to use them (prompt, pooling, variants). The
graph may return token states (pooled here, over the text tokens, optionally
skipping an instruction as Instructor does) or a finished sentence embedding.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from intentlocal.errors import ModelError

CONFIG_NAME = "intentlocal.json"


# The int8 graph is the default wherever its vectors stay this close to the reference's
# (mean cosine); intentlocal.export measures it once, after quantising.
INT8_MEAN_COSINE = 0.98


def default_variant(config: dict[str, Any]) -> str | None:
    """The variant a folder's runs use when none is named: int8 whenever the export
    measured it at the cosine bar, whatever the export recorded as its pick.

    Why not the recorded pick: until 6 Dec the exporter also required int8 to embed
    faster than fp32 in one timing of 129 texts. On 5 Dec, on a Sapphire Rapids VM where
    int8 runs at 2x fp32's speed (61 against 31 texts a second, reports/embedder_spr.md),
    a busy machine timed them at 36.6 and 37.0 and the export recorded fp32; every run
    there then used fp32 unnoticed, with 1.9x the memory. A default that depends on a
    noisy timing makes the same texts give other vectors on another laptop; int8 was
    the faster one on every CPU measured (reports/int8_precision.md, embedder_spr.md)."""
    variants: dict[str, str] = config.get("variants", {})
    int8 = config.get("export", {}).get("measured", {}).get("int8", {})
    if "int8" in variants and float(int8.get("mean_cosine", 0.0)) >= INT8_MEAN_COSINE:
        return "int8"
    if not variants:
        return None
    recorded = config.get("default_variant")
    return recorded if recorded in variants else next(iter(variants))


def read_config(folder: Path) -> dict[str, Any]:
    """A folder's intentlocal.json (how to use its ONNX files), {} when it has none."""
    path = folder / CONFIG_NAME
    if not path.is_file():
        return {}
    try:
        config: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}") from exc
    return config


def _find_onnx(folder: Path, config: dict[str, Any], variant: str | None) -> Path:
    variants: dict[str, str] = config.get("variants", {})
    if variant:
        if variant not in variants:
            raise ModelError(
                f"embedder {folder} has no variant {variant!r}; it has: "
                f"{', '.join(variants) or 'none'}"
            )
        return folder / variants[variant]
    chosen = default_variant(config)
    if chosen is not None:
        return folder / variants[chosen]
    for cand in (folder / "model.onnx", folder / "onnx" / "model.onnx"):
        if cand.is_file():
            return cand
    found = sorted(folder.glob("*.onnx")) + sorted(folder.glob("onnx/*.onnx"))
    if not found:
        raise ModelError(f"no .onnx file in the embedder folder {folder}")
    return found[0]


def _find_tokenizer(folder: Path) -> Path:
    for cand in (
        folder / "tokenizer.json",
        folder.parent / "tokenizer.json",
        folder / "source" / "tokenizer.json",
    ):
        if cand.is_file():
            return cand
    raise ModelError(
        f"the embedder folder {folder} has no tokenizer.json",
        hint="an ONNX embedder needs the tokenizer.json of the model it was exported from",
    )


class OnnxEmbedder:
    """Embeds texts with an ONNX sentence model; thread-safe, weights load on first use."""

    def __init__(
        self,
        path: str | Path,
        *,
        variant: str | None = None,
        prompt: str | None = None,
        max_length: int | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        model_id: str | None = None,
        x64_precision: bool = True,
        own_files: bool | None = None,
    ) -> None:
        p = Path(path)
        if not p.exists():
            raise ModelError(f"embedder path {p} does not exist")
        self.folder = p if p.is_dir() else p.parent
        self.config: dict[str, Any] = read_config(self.folder)
        self.onnx_path = p if p.is_file() else _find_onnx(self.folder, self.config, variant)
        # the variant whose file was opened (None: a plain .onnx file or folder)
        self.variant = next((name for name, file in self.config.get("variants", {}).items()
                             if self.folder / file == self.onnx_path), None)
        if not self.onnx_path.is_file():
            raise ModelError(f"ONNX file {self.onnx_path} is missing")
        self.tokenizer_path = _find_tokenizer(self.folder)
        self.prompt = self.config.get("prompt", "") if prompt is None else prompt
        self.instruction_pooling = self.config.get("instruction_pooling", "include")
        self.max_length = int(max_length or self.config.get("max_length", 256))
        self.normalize = bool(self.config.get("normalize", True))
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        self.model_id = model_id or f"{self.folder.name}/{self.onnx_path.name}"
        # A user's folder is named by its path, which says nothing of its weights (two
        # exports into folders called onnx are two models): its cached vectors are keyed
        # by the ONNX file's fingerprint too. A manifest model's bytes were checked at fetch.
        self.own_files = model_id is None if own_files is None else own_files
        self.x64_precision = x64_precision
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def vectors_id(self) -> str:
        """The embedding cache's key (backends.base.vectors_id): stores filled before the
        precision option (4 Dec) hold saturated int8 vectors under the bare model_id,
        and those must not come back into a run made with the option; a user's own
        folder adds its ONNX file's fingerprint (5 Dec); a model's variant is named
        (6 Dec), because until then a model's int8 and fp32 vectors shared one key and a
        store could serve one for the other (see ``default_variant``)."""
        key = self.model_id
        if self.own_files:
            from intentlocal.backends.base import file_fingerprint

            key += f"@{file_fingerprint(self.onnx_path)}"
        elif self.variant and not key.endswith(f":{self.variant}"):
            key += f":{self.variant}"
        return f"{key}+x64q" if self.x64_precision else key

    # -- lazy loading -------------------------------------------------------
    def release(self) -> None:
        """Drops the session (weights and onnxruntime's memory arena); the next call
        loads it again. Why: see LlamaCppGenerator.release."""
        with self._lock:
            self._session = None

    def _load(self) -> None:
        if self._session is not None:
            return
        import onnxruntime as ort

        ort.disable_telemetry_events()  # belt and braces: ORT_DISABLE_TELEMETRY is set too
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.x64_precision:
            # On x86-64 CPUs without VNNI (AVX2-only laptops, AMD Zen 2/3) onnxruntime's
            # u8 x s8 integer matmul uses VPMADDUBSW, whose 16-bit sums saturate: the int8
            # EmbeddingGemma's vectors drifted to cosine 0.989 (min 0.966) of fp32's there,
            # against 0.998 with this option, which makes those matmuls u8 x u8. It costs
            # 1.1-1.8x the int8 embedding time on such CPUs and does nothing on others
            # (VNNI, ARM) or for fp32 graphs (reports/int8_precision.md).
            opts.add_session_config_entry("session.x64quantprecision", "1")
        try:
            session = ort.InferenceSession(
                str(self.onnx_path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load the ONNX model {self.onnx_path}: {exc}") from exc
        try:
            tok = Tokenizer.from_file(str(self.tokenizer_path))
        except Exception as exc:
            raise ModelError(f"cannot read the tokenizer {self.tokenizer_path}: {exc}") from exc
        tok.no_padding()
        tok.enable_truncation(self.max_length)
        self._input_names = {i.name for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        self._output = "sentence_embedding" if "sentence_embedding" in outputs else outputs[0]
        self._pad_id = self._pad_token_id(tok)
        self._n_instruction = self._instruction_length(tok) if self.prompt else 0
        self._tokenizer = tok
        self._session = session

    @staticmethod
    def _pad_token_id(tok: Any) -> int:
        for t in ("<pad>", "[PAD]", "<|endoftext|>"):
            tid = tok.token_to_id(t)
            if tid is not None:
                return int(tid)
        return 0

    def _instruction_length(self, tok: Any) -> int:
        """Tokens the prompt occupies at the start of a text: leading specials + its words.

        Like InstructorEmbedding, the closing special token (T5's </s>) is not counted.
        """
        enc = tok.encode(self.prompt)
        special = list(enc.special_tokens_mask)
        lead = 0
        while lead < len(special) and special[lead]:
            lead += 1
        return lead + sum(1 for s in special[lead:] if not s)

    # -- public -------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self._load()
            if not texts:
                return np.zeros((0, 0), dtype=np.float32)
            order = np.argsort([len(t) for t in texts], kind="stable")
            out: list[np.ndarray] = [np.empty(0)] * len(texts)
            for start in range(0, len(texts), self.batch_size):
                idx = order[start : start + self.batch_size]
                vecs = self._embed_batch([self.prompt + texts[i] for i in idx])
                for j, i in enumerate(idx):
                    out[i] = vecs[j]
            return np.vstack(out).astype(np.float32, copy=False)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encs = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for r, e in enumerate(encs):
            ids[r, : len(e.ids)] = e.ids
            mask[r, : len(e.ids)] = 1
        pool_mask = mask.copy()
        if self.instruction_pooling == "exclude" and self._n_instruction:
            # Instructor pools over the text only; keep at least one token.
            for r, e in enumerate(encs):
                n = min(self._n_instruction, len(e.ids) - 1)
                pool_mask[r, :n] = 0
        feeds: dict[str, np.ndarray] = {}
        if "input_ids" in self._input_names:
            feeds["input_ids"] = ids
        if "attention_mask" in self._input_names:
            feeds["attention_mask"] = mask
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        if "pooling_mask" in self._input_names:
            feeds["pooling_mask"] = pool_mask
        try:
            (result,) = self._session.run([self._output], feeds)
        except Exception as exc:
            raise ModelError(f"the ONNX model {self.onnx_path} failed to run: {exc}") from exc
        if result.ndim == 3:  # token states: masked mean here
            m = pool_mask[:, :, None].astype(np.float32)
            result = (result * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        if self.normalize:
            result = result / np.maximum(np.linalg.norm(result, axis=1, keepdims=True), 1e-12)
        return result.astype(np.float32)
