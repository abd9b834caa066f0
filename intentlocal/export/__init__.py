"""One-off ONNX export of sentence embedders; needs the `export` extra (torch and co).

This package is the only place torch is used. The runtime never imports it: the
fetch step runs ``python -m intentlocal.export KIND SRC OUT`` in a child process,
and the result is a folder that ``intentlocal.backends.onnx_embedder`` reads with
onnxruntime + tokenizers alone:

    OUT/model.onnx         fp32 graph: input_ids, attention_mask[, pooling_mask]
                           -> sentence_embedding (pooled, projected; batch x dim)
    OUT/model_int8.onnx    the same, dynamically quantised (int8 weights)
    OUT/tokenizer.json     the model's own tokenizer
    OUT/intentlocal.json   prompt, max_length, pooling, variants, default variant and
                           the figures the default was chosen on

Two kinds are known:

* ``embeddinggemma``: a sentence-transformers folder (Gemma3 encoder, mean pooling
  over every token including the prompt, Dense, Dense, Normalize).
* ``instructor``: hkunlp/instructor-* (T5 encoder, mean pooling over the text
  tokens only, the instruction excluded as InstructorEmbedding does, optional Dense).
  :func:`export_instructor` also takes an in-memory encoder, which the tests use.

Every exported graph is checked before it is kept: against the torch module it came
from (same inputs, different batch shape than the one it was traced with), then,
through the runtime embedder, against the reference embeddings.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from intentlocal.backends.onnx_embedder import CONFIG_NAME, INT8_MEAN_COSINE

FP32_NAME = "model.onnx"
INT8_NAME = "model_int8.onnx"
OPSET = 17
DEFAULT_MAX_LENGTH = 256
DEFAULT_INSTRUCTOR_PROMPT = "Represent the intent of the message for clustering: "
GEMMA_PROMPT_NAME = "Clustering"
GEMMA_FALLBACK_PROMPT = "task: clustering | query: "

# Quality bars. fp32 must reproduce the reference almost exactly (only kernel
# rounding differs); int8 becomes the default if it stays close (INT8_MEAN_COSINE,
# shared with the loader, which applies the same rule to older exports).
FP32_MIN_COSINE = 0.999
# Largest graph-vs-torch difference accepted on the check batch (fp32 vs fp32).
GRAPH_ATOL = 1e-4

EXPORT_HINT = "the export needs the export extra: pip install -e '.[export]'"

_started = time.monotonic()


class ExportError(Exception):
    """An export that cannot be done or whose result failed its checks."""


def log(message: str) -> None:
    print(
        f"[intentlocal.export {time.monotonic() - _started:7.1f}s] {message}",
        file=sys.stderr,
        flush=True,
    )


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExportError(f"cannot import {module} ({exc}); {EXPORT_HINT}") from exc


# --------------------------------------------------------------------------------------
# texts used to check an export
# --------------------------------------------------------------------------------------

_FALLBACK_TEXTS = [
    "How do I locate my card?",
    "I still have not received my new card, I ordered over a week ago.",
    "why was I charged a fee for a transfer?",
    "Can I top up with a US card?",
    "my payment got declined twice today",
    "what is the exchange rate for euros",
    "I want to close my account",
    "the app says my identity verification failed, what now?",
]


def sample_texts(n: int = 128) -> list[str]:
    """Short customer-support texts shipped with the package (fixed order), at most n."""
    path = Path(__file__).resolve().parent.parent / "samples" / "support_sample.csv"
    texts: list[str] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            texts = [row["text"] for row in csv.DictReader(fh) if row.get("text")]
    except (OSError, KeyError, csv.Error):
        texts = []
    texts = texts or list(_FALLBACK_TEXTS)
    return texts[:n]


def _long_text(words: int = 400) -> str:
    """A text longer than max_length tokens: checks truncation and long sequences."""
    base = (
        "I moved abroad last month and since then my card keeps getting declined at "
        "shops, the app shows a pending top up that never arrived and support has not "
        "answered my messages about the extra fees either. "
    )
    out = []
    while len(" ".join(out).split()) < words:
        out.append(base)
    return " ".join(out)


# --------------------------------------------------------------------------------------
# torch graph pieces
# --------------------------------------------------------------------------------------


def _as_head(module: Any) -> Any:
    """A sentence-transformers Dense (linear + activation) or any tensor -> tensor module."""
    import torch

    if hasattr(module, "linear") and hasattr(module, "activation_function"):
        linear, act = module.linear, module.activation_function
        if not getattr(module, "use_residual", False):
            return torch.nn.Sequential(linear, act)
        residual = None if linear.in_features == linear.out_features else module.residual

        class ResidualDense(torch.nn.Module):  # sentence-transformers >= 6 Dense(use_residual)
            def __init__(self) -> None:
                super().__init__()
                self.linear, self.act, self.residual = linear, act, residual

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                skip = x if self.residual is None else self.residual(x)
                return self.act(self.linear(x)) + skip

        return ResidualDense()
    if isinstance(module, torch.nn.Module):
        return module
    raise ExportError(f"cannot use {type(module).__name__} as a dense head")


def _normalize_head() -> Any:
    import torch

    class L2Normalize(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.normalize(x, p=2.0, dim=1)

    return L2Normalize()


def _sentence_graph(encoder: Any, heads: Sequence[Any], *, pooling_input: bool) -> Any:
    """encoder -> masked mean pooling -> heads, as one torch module to export.

    With ``pooling_input`` the graph takes a third input, ``pooling_mask``, and pools
    over it (the attention still covers every token); without, it pools over the
    attention mask.
    """
    import torch

    class SentenceGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.heads = torch.nn.ModuleList(list(heads))

        def embed(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pooling_mask: torch.Tensor
        ) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
            weights = pooling_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * weights).sum(dim=1)
            count = weights.sum(dim=1).clamp(min=1e-9)
            x = summed / count
            for head in self.heads:
                x = head(x)
            return x

    class WithPoolingMask(SentenceGraph):
        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pooling_mask: torch.Tensor
        ) -> torch.Tensor:
            return self.embed(input_ids, attention_mask, pooling_mask)

    class WithoutPoolingMask(SentenceGraph):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.embed(input_ids, attention_mask, attention_mask)

    module = WithPoolingMask() if pooling_input else WithoutPoolingMask()
    module.eval()
    return module


def _batch(
    tokenizer_json: Path, texts: Sequence[str], *, max_length: int, instruction_tokens: int = 0
) -> dict[str, Any]:
    """Right-padded int64 arrays, as the runtime builds them."""
    import numpy as np
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_padding()
    tok.enable_truncation(max_length)
    pad = next(
        (
            tok.token_to_id(t)
            for t in ("<pad>", "[PAD]", "<|endoftext|>")
            if tok.token_to_id(t) is not None
        ),
        0,
    )
    encs = tok.encode_batch(list(texts))
    width = max(len(e.ids) for e in encs)
    ids = np.full((len(encs), width), pad, dtype=np.int64)
    mask = np.zeros((len(encs), width), dtype=np.int64)
    for r, e in enumerate(encs):
        ids[r, : len(e.ids)] = e.ids
        mask[r, : len(e.ids)] = 1
    pool = mask.copy()
    for r, e in enumerate(encs):
        pool[r, : min(instruction_tokens, len(e.ids) - 1)] = 0
    return {"input_ids": ids, "attention_mask": mask, "pooling_mask": pool}


def _torch_forward(module: Any, feeds: dict[str, Any], names: Sequence[str]) -> Any:
    import torch

    with torch.no_grad():
        out = module(*(torch.from_numpy(feeds[n]) for n in names))
    return out.float().numpy()


def _export_graph(module: Any, example: dict[str, Any], names: Sequence[str], path: Path) -> None:
    """torch.onnx.export of ``module`` with dynamic batch and sequence axes."""
    import torch

    args = tuple(torch.from_numpy(example[n]) for n in names)
    dynamic_axes = {n: {0: "batch", 1: "sequence"} for n in names}
    dynamic_axes["sentence_embedding"] = {0: "batch"}
    tmp = path.with_name(path.name + ".partial")
    log(f"tracing and exporting to {path.name} (opset {OPSET}, torch {torch.__version__})")
    with torch.no_grad():
        torch.onnx.export(
            module,
            args,
            str(tmp),
            input_names=list(names),
            output_names=["sentence_embedding"],
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    if not tmp.is_file():
        raise ExportError(f"torch.onnx.export wrote no file at {tmp}")
    os.replace(tmp, path)
    log(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB)")


def _check_graph(module: Any, path: Path, feeds: dict[str, Any], names: Sequence[str]) -> float:
    """The ONNX graph must give the torch module's output on a batch it was not traced on."""
    import numpy as np

    want = _torch_forward(module, feeds, names)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(["sentence_embedding"], {n: feeds[n] for n in names})
    if got.shape != want.shape:
        raise ExportError(f"{path.name}: output shape {got.shape}, torch gives {want.shape}")
    scale = max(float(np.abs(want).max()), 1e-6)
    diff = float(np.abs(got - want).max())
    log(
        f"graph check on a {feeds['input_ids'].shape[0]}x{feeds['input_ids'].shape[1]} batch: "
        f"max |onnx - torch| = {diff:.2e} (largest value {scale:.2e})"
    )
    if diff > GRAPH_ATOL * max(1.0, scale):
        raise ExportError(
            f"{path.name} does not reproduce the torch model: max abs difference {diff:.3e} "
            f"(allowed {GRAPH_ATOL * max(1.0, scale):.1e}); the export traced a wrong path"
        )
    return diff


# --------------------------------------------------------------------------------------
# quantisation, measurement, config
# --------------------------------------------------------------------------------------


def quantize_int8(src: Path, dst: Path, *, keep_fp32: Sequence[str] = ()) -> dict[str, Any]:
    """Dynamic int8 quantisation; returns the settings used (recorded in intentlocal.json).

    Weights of the MatMuls with a constant weight and of the token-embedding Gather
    become int8, per output channel; activations are quantised per tensor at run time.
    MatMuls whose node name contains one of ``keep_fp32`` stay fp32: the MLP output
    projections (Gemma's down_proj, T5's wo) see activations with large outliers
    that a per-tensor int8 scale flattens. Measured on EmbeddingGemma (cosine to the
    fp32 graph on 160 banking texts, 2 threads): all MatMuls int8 0.9927 mean / 0.9879
    min; down_proj kept fp32 0.9980 / 0.9954, ~10% slower; the embedding Gather in
    int8 shrinks the file from 914 to 374 MB at no measurable cost.
    """
    _require("onnx")
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    excluded = [
        n.name for n in graph.node if n.op_type == "MatMul" and any(k in n.name for k in keep_fp32)
    ]
    settings = {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        "per_channel": True,
        "op_types": ["MatMul", "Gather"],
        "kept_fp32": list(keep_fp32),
        "kept_fp32_nodes": len(excluded),
    }
    log(
        f"quantising {src.name} -> {dst.name} (dynamic, QInt8 per-channel weights; "
        f"{len(excluded)} MatMuls matching {list(keep_fp32)} kept fp32)"
    )
    tmp = dst.with_name(dst.name + ".partial")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # silence "consider pre-processing" advice
    try:
        quantize_dynamic(
            str(src),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=False,
            op_types_to_quantize=["MatMul", "Gather"],
            nodes_to_exclude=excluded,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root.setLevel(level)
    os.replace(tmp, dst)
    log(f"wrote {dst} ({dst.stat().st_size / 1e6:.0f} MB)")
    return settings


def cosines(a: Any, b: Any) -> Any:
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(axis=1)


def _embed_and_time(
    folder: Path, variants: Sequence[str], texts: Sequence[str], rounds: int = 2
) -> tuple[dict[str, Any], dict[str, float]]:
    """Embeddings of each variant through the runtime embedder, and its best texts/s.

    The variants take turns, round after round, so a machine busy with something else
    slows them alike and the comparison stays fair.
    """
    from intentlocal.backends.onnx_embedder import OnnxEmbedder

    embedders = {v: OnnxEmbedder(folder, variant=v) for v in variants}
    for emb in embedders.values():
        emb.embed(list(texts[:4]))  # load + warm up
    vecs: dict[str, Any] = {}
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for v, emb in embedders.items():
            t0 = time.perf_counter()
            vecs[v] = emb.embed(list(texts))
            best[v] = min(best[v], time.perf_counter() - t0)
    return vecs, {v: len(texts) / best[v] for v in variants}


def _write_config(out_dir: Path, config: dict[str, Any]) -> None:
    tmp = out_dir / (CONFIG_NAME + ".partial")
    tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / CONFIG_NAME)


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("torch", "transformers", "sentence_transformers", "onnx", "onnxruntime"):
        mod = sys.modules.get(name)
        if mod is not None and hasattr(mod, "__version__"):
            out[name] = str(mod.__version__)
    return out


def _finish_variants(
    out_dir: Path,
    config: dict[str, Any],
    texts: Sequence[str],
    reference: Any,
    reference_name: str,
    *,
    quantize: bool,
    fp32_min_cosine: float | None,
    keep_fp32: Sequence[str] = (),
) -> dict[str, Any]:
    """Check fp32 against the reference, quantise, measure, pick the default, write config."""
    import numpy as np

    config = dict(config)
    config["variants"] = {"fp32": FP32_NAME}
    config["default_variant"] = "fp32"
    _write_config(out_dir, config)
    measured: dict[str, Any] = {"reference": reference_name, "texts": len(texts)}

    from intentlocal.backends.onnx_embedder import OnnxEmbedder

    fp32_vecs = OnnxEmbedder(out_dir, variant="fp32").embed(list(texts))
    cos = cosines(fp32_vecs, reference) if reference is not None else np.ones(len(texts))
    log(f"fp32 vs {reference_name}: mean cosine {cos.mean():.6f}, min {cos.min():.6f}")
    if fp32_min_cosine is not None and float(cos.min()) < fp32_min_cosine:
        raise ExportError(
            f"the fp32 ONNX graph does not match {reference_name}: min cosine "
            f"{cos.min():.5f} < {fp32_min_cosine} (mean {cos.mean():.5f})"
        )
    measured["fp32"] = {
        "mean_cosine": round(float(cos.mean()), 6),
        "min_cosine": round(float(cos.min()), 6),
    }
    variants = ["fp32"]
    if quantize:
        measured["int8_settings"] = quantize_int8(
            out_dir / FP32_NAME, out_dir / INT8_NAME, keep_fp32=keep_fp32
        )
        config["variants"]["int8"] = INT8_NAME
        _write_config(out_dir, config)
        variants.append("int8")
    vecs, speed = _embed_and_time(out_dir, variants, texts)
    measured["fp32"]["texts_per_s"] = round(speed["fp32"], 1)
    log(f"fp32: {speed['fp32']:.1f} texts/s")
    if quantize:
        base = reference if reference is not None else fp32_vecs
        icos = cosines(vecs["int8"], base)
        measured["int8"] = {
            "mean_cosine": round(float(icos.mean()), 6),
            "min_cosine": round(float(icos.min()), 6),
            "texts_per_s": round(speed["int8"], 1),
        }
        log(
            f"int8 vs {reference_name}: mean cosine {icos.mean():.6f}, min {icos.min():.6f}; "
            f"{speed['int8']:.1f} texts/s"
        )
        good = float(icos.mean()) >= INT8_MEAN_COSINE
        faster = speed["int8"] > speed["fp32"]
        # speed is reported, not decisive: one timing on a busy machine once picked fp32
        # where int8 runs twice as fast (onnx_embedder.default_variant)
        config["default_variant"] = "int8" if good else "fp32"
        measured["rule"] = (
            f"int8 if its mean cosine vs the reference >= {INT8_MEAN_COSINE}, else fp32 "
            "(the speeds are recorded, not used)"
        )
        log(
            f"default variant: {config['default_variant']} "
            f"(int8 {'meets' if good else 'misses'} the cosine bar; it timed "
            f"{'faster' if faster else 'not faster'} than fp32 here)"
        )
    config["export"] = {**config.get("export", {}), "measured": measured}
    _write_config(out_dir, config)
    return config


def _copy_tokenizer(src: Path, out_dir: Path) -> Path:
    dst = out_dir / "tokenizer.json"
    if src.resolve() != dst.resolve():
        shutil.copyfile(src, dst)
    return dst


def _prepare_out(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (FP32_NAME, INT8_NAME, CONFIG_NAME):
        (out_dir / stale).unlink(missing_ok=True)
    return out_dir


# --------------------------------------------------------------------------------------
# EmbeddingGemma (sentence-transformers folder)
# --------------------------------------------------------------------------------------


def _st_prompt(st: Any, src: Path, prompt_name: str) -> str:
    prompts = dict(getattr(st, "prompts", None) or {})
    if not prompts:
        cfg = src / "config_sentence_transformers.json"
        if cfg.is_file():
            prompts = json.loads(cfg.read_text(encoding="utf-8")).get("prompts", {}) or {}
    if prompt_name in prompts:
        return str(prompts[prompt_name])
    log(f"warning: the model defines no {prompt_name!r} prompt; using {GEMMA_FALLBACK_PROMPT!r}")
    return GEMMA_FALLBACK_PROMPT


def _st_heads(st: Any) -> tuple[list[Any], bool]:
    """Split a SentenceTransformer into (heads after pooling, include_prompt), or fail."""
    modules = list(st)
    kinds = [type(m).__name__ for m in modules]
    if len(modules) < 2 or kinds[0] != "Transformer" or kinds[1] != "Pooling":
        raise ExportError(f"expected Transformer, Pooling, ... modules; found {kinds}")
    pooling = modules[1]
    # sentence-transformers >= 6 keeps the mode as a string (or tuple); older versions as flags.
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None and hasattr(pooling, "get_pooling_mode_str"):
        mode = pooling.get_pooling_mode_str()
    if mode not in ("mean", ("mean",), ["mean"]):
        raise ExportError(f"only mean pooling is supported, the model uses {mode!r}")
    include_prompt = bool(getattr(pooling, "include_prompt", True))
    heads: list[Any] = []
    for m, kind in zip(modules[2:], kinds[2:], strict=True):
        if kind == "Dense":
            heads.append(_as_head(m))
        elif kind == "Normalize":
            heads.append(_normalize_head())
        else:
            raise ExportError(f"unsupported sentence-transformers module {kind}")
    return heads, include_prompt


def _use_eager_attention(model: Any) -> None:
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:  # older transformers
        model.config._attn_implementation = "eager"


def _gemma_bidirectional(model: Any) -> Any:
    """Gemma3 encoder whose attention masks are built here, from plain tensor ops.

    transformers builds EmbeddingGemma's bidirectional masks with vmap'd mask functions,
    which the TorchScript tracer cannot follow. The same masks, written out: full
    layers see every non-padding token; sliding layers see non-padding tokens closer
    than ``config.sliding_window`` (``abs(q - k) < window``, as transformers'
    bidirectional window overlay). Additive float masks, as eager attention expects;
    they reach the layers through the model's prepared-masks (dict) path.
    """
    import torch

    config = model.config
    if not getattr(config, "use_bidirectional_attention", False):
        raise ExportError(
            "the Gemma3 config does not use bidirectional attention; "
            "this is not an EmbeddingGemma encoder"
        )
    layer_types = sorted(set(getattr(config, "layer_types", None) or ["full_attention"]))
    window = getattr(config, "sliding_window", None)

    class GemmaBidirectional(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
            dtype = self.model.embed_tokens.weight.dtype
            batch, length = input_ids.shape
            keep = attention_mask[:, None, None, :].to(torch.bool)  # B,1,1,L over keys
            keep = keep.expand(batch, 1, length, length)
            zero = torch.zeros((), dtype=dtype)
            blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype)
            pos = torch.arange(length, device=input_ids.device)
            near = ((pos[None, :] - pos[:, None]).abs() < (window or length + 1))[None, None]
            masks = {}
            for kind in layer_types:
                allowed = keep & near if kind == "sliding_attention" else keep
                masks[kind] = torch.where(allowed, zero, blocked)
            return self.model(input_ids=input_ids, attention_mask=masks, use_cache=False)

    return GemmaBidirectional().eval()


def export_embeddinggemma(
    src_dir: str | Path,
    out_dir: str | Path,
    *,
    prompt_name: str = GEMMA_PROMPT_NAME,
    max_length: int = DEFAULT_MAX_LENGTH,
    quantize: bool = True,
    check_texts: int = 128,
) -> dict[str, Any]:
    """Export a sentence-transformers EmbeddingGemma folder; returns the written config."""
    src = Path(src_dir)
    if not (src / "modules.json").is_file():
        raise ExportError(f"{src} is not a sentence-transformers folder (no modules.json)")
    if not (src / "tokenizer.json").is_file():
        raise ExportError(f"{src} has no tokenizer.json")
    out = _prepare_out(Path(out_dir))
    torch = _require("torch")
    st_mod = _require("sentence_transformers")
    torch.manual_seed(0)

    log(f"loading {src} with sentence-transformers {st_mod.__version__}")
    st = st_mod.SentenceTransformer(str(src), device="cpu", local_files_only=True)
    st.eval()
    st.max_seq_length = max_length
    prompt = _st_prompt(st, src, prompt_name)
    heads, include_prompt = _st_heads(st)
    if not include_prompt:
        raise ExportError(
            "this model's pooling excludes the prompt; the embeddinggemma export "
            "only handles include_prompt = true"
        )
    encoder = st[0].auto_model
    # Sliding-window layers only see tokens closer than the window; the checks below run
    # at max_length, so the exported graph is vouched for up to it.
    sliding = getattr(encoder.config, "sliding_window", None)
    if sliding and max_length > sliding:
        raise ExportError(f"max_length {max_length} exceeds the sliding window ({sliding})")
    log(
        f"prompt {prompt_name!r} = {prompt!r}; modules: "
        f"{[type(m).__name__ for m in st]}; max_length {max_length}"
    )

    texts = [*sample_texts(check_texts), _long_text()]
    log(f"reference: sentence-transformers on {len(texts)} texts")
    reference = st.encode(
        texts,
        prompt=prompt,
        batch_size=16,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )

    _use_eager_attention(encoder)
    graph = _sentence_graph(_gemma_bidirectional(encoder), heads, pooling_input=False)
    names = ["input_ids", "attention_mask"]
    tok_path = src / "tokenizer.json"
    example = _batch(
        tok_path,
        [
            prompt + "where is my card?",
            prompt + "I was charged twice for the same coffee this morning",
        ],
        max_length=max_length,
    )
    _export_graph(graph, example, names, out / FP32_NAME)
    check = _batch(
        tok_path, [prompt + t for t in [texts[0], texts[1], texts[-1]]], max_length=max_length
    )
    graph_diff = _check_graph(graph, out / FP32_NAME, check, names)
    del graph, encoder, heads
    _copy_tokenizer(tok_path, out)

    config = {
        "prompt": prompt,
        "max_length": max_length,
        "normalize": True,
        "instruction_pooling": "include",
        "export": {
            "kind": "embeddinggemma",
            "prompt_name": prompt_name,
            "graph": "Gemma3 encoder (eager attention, bidirectional masks built in the graph) "
            "-> masked mean over all tokens incl. the prompt "
            "-> " + " -> ".join(type(m).__name__ for m in list(st)[2:]),
            "opset": OPSET,
            "graph_max_abs_diff_vs_torch": graph_diff,
            "versions": _versions(),
        },
    }
    del st
    return _finish_variants(
        out,
        config,
        texts,
        reference,
        f"sentence-transformers (prompt {prompt_name!r})",
        quantize=quantize,
        fp32_min_cosine=FP32_MIN_COSINE,
        keep_fp32=["mlp/down_proj/"],
    )


# --------------------------------------------------------------------------------------
# Instructor (T5 encoder, pooling over the text only)
# --------------------------------------------------------------------------------------


def instruction_token_count(tokenizer_json: str | Path, prompt: str) -> int:
    """Tokens of the instruction at the start of "prompt + text", as InstructorEmbedding counts.

    InstructorEmbedding tokenises the instruction alone and drops one position
    (``instruction_attention_mask[:, 1:]``): for T5, which adds only a closing </s>,
    that is the instruction's non-special tokens. Counted here as leading special
    tokens plus non-special tokens, the same as the runtime embedder.
    """
    from tokenizers import Tokenizer

    enc = Tokenizer.from_file(str(tokenizer_json)).encode(prompt)
    special = list(enc.special_tokens_mask)
    lead = 0
    while lead < len(special) and special[lead]:
        lead += 1
    return lead + sum(1 for s in special[lead:] if not s)


def _prompt_is_prefix(tok_path: Path, prompt: str, n_instr: int, texts: Sequence[str]) -> bool:
    """Do the prompt's tokens open "prompt + text" unchanged? Warns when they do not.

    The runtime (like InstructorEmbedding) counts the instruction's tokens on the
    prompt alone. With a SentencePiece tokeniser a trailing space or a word glued to
    the text can tokenise differently inside the joined text, and the count is then
    off by one: a text token dropped from pooling, or an instruction token kept.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_path))
    alone = tok.encode(prompt).ids[:n_instr]
    bad = [t for t in texts if tok.encode(prompt + t).ids[:n_instr] != alone]
    if bad:
        log(
            f"warning: the prompt's {n_instr} tokens differ inside prompt + text for "
            f"{len(bad)}/{len(texts)} check texts (e.g. {bad[0]!r}); pooling will be "
            "off by a token there"
        )
    return not bad


def export_instructor(
    encoder: Any,
    dense: Any,
    tokenizer_json_path: str | Path,
    out_dir: str | Path,
    prompt: str = DEFAULT_INSTRUCTOR_PROMPT,
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    normalize: bool = True,
    quantize: bool = True,
    check_texts: Sequence[str] | None = None,
) -> Path:
    """Export an Instructor-style embedder; returns the model folder.

    ``encoder``: a transformers encoder (e.g. ``T5EncoderModel``) whose first output is the
    token states. ``dense``: None, a torch module mapping the pooled vector (e.g.
    ``nn.Linear``), a sentence-transformers ``Dense``, or a list of those, applied in order.
    The graph takes input_ids, attention_mask and pooling_mask (the attention mask with
    the instruction zeroed, built by the runtime) and returns the pooled, projected,
    unnormalised ``sentence_embedding``; the runtime L2-normalises when ``normalize``.
    """
    tok_path = Path(tokenizer_json_path)
    if not tok_path.is_file():
        raise ExportError(f"tokenizer file {tok_path} does not exist")
    out = _prepare_out(Path(out_dir))
    _require("torch")
    encoder.eval()
    denses = [] if dense is None else list(dense) if isinstance(dense, list | tuple) else [dense]
    heads = [_as_head(d) for d in denses]
    for h in heads:
        h.eval()
    graph = _sentence_graph(encoder, heads, pooling_input=True)
    names = ["input_ids", "attention_mask", "pooling_mask"]
    n_instr = instruction_token_count(tok_path, prompt) if prompt else 0
    log(f"instructor: prompt {prompt!r} covers {n_instr} tokens (excluded from pooling)")

    texts = list(check_texts) if check_texts else sample_texts(64)
    prefix_ok = _prompt_is_prefix(tok_path, prompt, n_instr, texts[:16]) if prompt else True
    example = _batch(
        tok_path,
        [prompt + "where is my card", prompt + texts[0]],
        max_length=max_length,
        instruction_tokens=n_instr,
    )
    _export_graph(graph, example, names, out / FP32_NAME)
    check = _batch(
        tok_path,
        [prompt + t for t in [*texts[:3], _long_text(60)]],
        max_length=max_length,
        instruction_tokens=n_instr,
    )
    graph_diff = _check_graph(graph, out / FP32_NAME, check, names)
    _copy_tokenizer(tok_path, out)
    config = {
        "prompt": prompt,
        "max_length": max_length,
        "normalize": normalize,
        "instruction_pooling": "exclude",
        "export": {
            "kind": "instructor",
            "graph": "encoder -> masked mean over pooling_mask (text tokens only) -> "
            f"{len(heads)} dense head(s)",
            "instruction_tokens": n_instr,
            "instruction_tokens_are_a_prefix": prefix_ok,
            "opset": OPSET,
            "graph_max_abs_diff_vs_torch": graph_diff,
            "versions": _versions(),
        },
    }
    # The torch module is the reference: fp32 must match it (through the runtime's
    # tokenisation and pooling mask), int8 is judged against fp32.
    import numpy as np

    ref_feeds = [
        _batch(tok_path, [prompt + t], max_length=max_length, instruction_tokens=n_instr)
        for t in texts
    ]
    reference = np.vstack([_torch_forward(graph, f, names) for f in ref_feeds])
    _finish_variants(
        out,
        config,
        texts,
        reference,
        "torch forward (instruction excluded)",
        quantize=quantize,
        fp32_min_cosine=0.9999,
        keep_fp32=["DenseReluDense/wo/", "DenseGatedActDense/wo/"],
    )
    return out


def _torch_class(dotted: str) -> Callable[[], Any]:
    """Activation named in a sentence-transformers Dense config; only torch.nn classes."""
    import torch

    if not dotted.startswith("torch.nn."):
        raise ExportError(f"unsupported Dense activation {dotted!r}")
    obj: Any = torch
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part, None)
        if obj is None:
            raise ExportError(f"unknown Dense activation {dotted!r}")
    return obj


def _load_dense(folder: Path) -> Any:
    import torch

    cfg_path = next(
        (folder / n for n in ("config.json", "config_gru.json") if (folder / n).is_file()), None
    )
    if cfg_path is None:
        raise ExportError(f"{folder} holds no Dense config.json")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    linear = torch.nn.Linear(
        int(cfg["in_features"]), int(cfg["out_features"]), bias=bool(cfg.get("bias", True))
    )
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        state = load_file(str(folder / "model.safetensors"))
    elif (folder / "pytorch_model.bin").is_file():
        state = torch.load(str(folder / "pytorch_model.bin"), map_location="cpu", weights_only=True)
    else:
        raise ExportError(f"{folder} holds no Dense weights")
    state = {k.removeprefix("linear."): v for k, v in state.items()}
    linear.load_state_dict(state)
    act = _torch_class(cfg.get("activation_function", "torch.nn.modules.linear.Identity"))()
    return torch.nn.Sequential(linear, act)


def export_instructor_folder(
    src_dir: str | Path,
    out_dir: str | Path,
    *,
    prompt: str = DEFAULT_INSTRUCTOR_PROMPT,
    max_length: int = DEFAULT_MAX_LENGTH,
    quantize: bool = True,
) -> Path:
    """Export an hkunlp/instructor-* folder (modules.json: T5 encoder, Pooling, Dense...)."""
    src = Path(src_dir)
    transformers = _require("transformers")
    modules_json = src / "modules.json"
    modules = json.loads(modules_json.read_text()) if modules_json.is_file() else []
    log(f"loading the T5 encoder from {src}")
    encoder = transformers.T5EncoderModel.from_pretrained(str(src), local_files_only=True)
    denses = []
    for m in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind = str(m.get("type", ""))
        if kind.endswith("Dense"):
            denses.append(_load_dense(src / m["path"]))
        elif kind.endswith("Pooling"):
            pcfg = src / m["path"] / "config.json"
            if pcfg.is_file() and not json.loads(pcfg.read_text()).get(
                "pooling_mode_mean_tokens", True
            ):
                raise ExportError("only mean pooling is supported for Instructor models")
    tok = src / "tokenizer.json"
    with tempfile.TemporaryDirectory() as tmp:
        if not tok.is_file():
            log("no tokenizer.json in the folder: converting the slow tokenizer")
            fast = transformers.AutoTokenizer.from_pretrained(
                str(src), use_fast=True, local_files_only=True
            )
            tok = Path(tmp) / "tokenizer.json"
            fast.backend_tokenizer.save(str(tok))
        return export_instructor(
            encoder, denses or None, tok, out_dir, prompt, max_length=max_length, quantize=quantize
        )


__all__ = [
    "DEFAULT_INSTRUCTOR_PROMPT",
    "ExportError",
    "cosines",
    "export_embeddinggemma",
    "export_instructor",
    "export_instructor_folder",
    "instruction_token_count",
    "quantize_int8",
    "sample_texts",
]
