"""Measure the exported EmbeddingGemma ONNX variants against sentence-transformers.

    python scripts/measure_embedder.py [--model-dir models/embeddinggemma-300m]

* fidelity: mean / min cosine of ONNX fp32 and int8 (via OnnxEmbedder) against the
  sentence-transformers reference (prompt_name="Clustering"), on the first N (500)
  texts of banking77/test.jsonl;
* speed: texts/s of each on those texts, all on the same thread count (2), the
  embedders taking turns on chunks of 100 texts so a passing load slows them alike;
* clustering: K-means with the true K (77), n_init=10, 5 seeds, on the full banking77
  test set (3080 texts): ACC (Hungarian), NMI, ARI, x100, mean and std over seeds, for
  ONNX fp32, int8 and (unless --no-reference-kmeans) the reference.

Writes reports/embedder.json and reports/embedder.md. Needs the export extra
(torch, sentence-transformers) for the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

CHECKOUT = Path(__file__).resolve().parent.parent


def load_jsonl(path: Path) -> tuple[list[str], list[str]]:
    from intentlocal.bench import load_labelled

    return load_labelled(path, None, 0)


def cluster_acc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Hungarian-matched accuracy."""
    from scipy.optimize import linear_sum_assignment

    n = max(y_true.max(), y_pred.max()) + 1
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (y_pred, y_true), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(y_true))


def kmeans_scores(vecs: np.ndarray, y: np.ndarray, k: int, seeds: list[int]) -> dict:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    per_seed = []
    for seed in seeds:
        pred = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(vecs)
        per_seed.append(
            {
                "seed": seed,
                "acc": 100 * cluster_acc(y, pred),
                "nmi": 100 * normalized_mutual_info_score(y, pred),
                "ari": 100 * adjusted_rand_score(y, pred),
            }
        )
    out = {"per_seed": per_seed}
    for m in ("acc", "nmi", "ari"):
        vals = np.array([s[m] for s in per_seed])
        out[m] = round(float(vals.mean()), 2)
        out[f"{m}_std"] = round(float(vals.std()), 2)
    return out


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    c = (a * b).sum(axis=1)
    return {
        "mean": round(float(c.mean()), 5),
        "min": round(float(c.min()), 5),
        "p01": round(float(np.percentile(c, 1)), 5),
    }


def timed(fn, texts: list[str]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    vecs = np.asarray(fn(texts), dtype=np.float32)
    return vecs, time.perf_counter() - t0


def log(msg: str) -> None:
    print(f"[measure] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    from intentlocal import paths

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model-dir",
        type=Path,
        default=paths.models_dir() / "embeddinggemma-300m",
        help="the fetched ONNX folder (intentlocal.json, model*.onnx)",
    )
    ap.add_argument(
        "--source",
        type=Path,
        default=None,
        help="sentence-transformers folder for the reference (default MODEL_DIR/source)",
    )
    ap.add_argument(
        "--data",
        type=Path,
        default=CHECKOUT.parent / "shared" / "data" / "banking77" / "test.jsonl",
    )
    ap.add_argument("--n", type=int, default=500, help="texts for cosine and speed (first N)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=100, help="texts per speed turn")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--prompt-name", default="Clustering")
    ap.add_argument(
        "--no-reference-kmeans",
        action="store_true",
        help="skip embedding the full set with sentence-transformers",
    )
    ap.add_argument("--out", type=Path, default=CHECKOUT / "reports")
    args = ap.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    from intentlocal.backends.onnx_embedder import OnnxEmbedder

    torch.set_num_threads(args.threads)
    source = args.source or args.model_dir / "source"
    cfg = json.loads((args.model_dir / "intentlocal.json").read_text())
    texts, labels = load_jsonl(args.data)
    names = sorted(set(labels))
    y = np.array([names.index(lab) for lab in labels])
    k = len(names)
    sub = texts[: args.n]
    seeds = list(range(args.seeds))
    log(f"{len(texts)} texts, K={k}; cosine/speed on the first {len(sub)}; {args.threads} threads")

    results: dict = {
        "command": "python "
        + " ".join(
            shlex.quote(a)
            for a in [
                os.path.relpath(__file__, CHECKOUT),
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "data": str(args.data),
        "n_speed_texts": len(sub),
        "n_cluster_texts": len(texts),
        "k": k,
        "kmeans": f"scikit-learn KMeans(n_clusters={k}, n_init=10), seeds {seeds}",
        "model_dir": str(args.model_dir),
        "config": {
            key: cfg.get(key)
            for key in (
                "prompt",
                "max_length",
                "instruction_pooling",
                "variants",
                "default_variant",
            )
        },
        "variants": {},
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }

    # Reference: sentence-transformers, same max_length as the ONNX runtime.
    log(f"loading the reference from {source}")
    st = SentenceTransformer(str(source), device="cpu", local_files_only=True)
    st.max_seq_length = int(cfg.get("max_length", 256))

    def st_embed(batch: list[str]) -> np.ndarray:
        return st.encode(
            batch,
            prompt_name=args.prompt_name,
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    embedders = {"reference": st_embed}
    onnx_files = cfg.get("variants", {})
    for variant in onnx_files:
        embedders[variant] = OnnxEmbedder(
            args.model_dir, variant=variant, threads=args.threads
        ).embed
    for fn in embedders.values():
        fn(sub[:8])  # load + warm up

    # Speed: the embedders take turns on chunks of the same texts, so a load that comes
    # and goes on the machine (another job) slows them alike.
    parts: dict[str, list[np.ndarray]] = {name: [] for name in embedders}
    secs = dict.fromkeys(embedders, 0.0)
    for start in range(0, len(sub), args.chunk):
        chunk = sub[start : start + args.chunk]
        for name, fn in embedders.items():
            vecs, dt = timed(fn, chunk)
            parts[name].append(vecs)
            secs[name] += dt
    first = {name: np.vstack(p) for name, p in parts.items()}
    ref = first["reference"]
    results["variants"]["reference"] = {
        "what": f"sentence-transformers {__import__('sentence_transformers').__version__}, "
        f"torch {torch.__version__}, prompt_name={args.prompt_name!r}",
        "texts_per_s": round(len(sub) / secs["reference"], 1),
    }
    for variant, file in onnx_files.items():
        results["variants"][variant] = {
            "file": file,
            "size_mb": round((args.model_dir / file).stat().st_size / 1e6),
            "cosine_vs_reference": cosine_stats(first[variant], ref),
            "texts_per_s": round(len(sub) / secs[variant], 1),
        }
    for name, m in results["variants"].items():
        log(f"{name}: {m}")

    full: dict[str, np.ndarray] = {}
    for name, fn in embedders.items():
        if name == "reference" and args.no_reference_kmeans:
            continue
        log(f"embedding the other {len(texts) - len(sub)} texts with {name}")
        full[name] = np.vstack([first[name], fn(texts[len(sub) :])])

    for name, vecs in full.items():
        log(f"K-means on {name} ({len(seeds)} seeds)")
        results["variants"][name]["kmeans"] = kmeans_scores(vecs, y, k, seeds)
        km = results["variants"][name]["kmeans"]
        log(f"{name}: ACC {km['acc']} NMI {km['nmi']} ARI {km['ari']}")

    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "embedder.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "embedder.md").write_text(render_md(results))
    log(f"wrote {args.out / 'embedder.md'} and {args.out / 'embedder.json'}")
    return 0


def render_md(r: dict) -> str:
    v = r["variants"]
    lines = [
        "# EmbeddingGemma-300M: ONNX export vs sentence-transformers",
        "",
        f"Measured {r['date']} on {r['machine']['cpus']} CPUs, {r['machine']['threads']} threads "
        f"({r['machine']['platform']}); load average (1, 5, 15 min) "
        f"{r['load_average_at_start']} at the start, {r['load_average_at_end']} at the end: "
        "other jobs shared the cores, so compare speeds within this table only (the "
        "embedders took turns on the same chunks of texts).",
        "",
        "```",
        r["command"],
        "```",
        "",
        f"Runtime config: prompt {r['config']['prompt']!r}, max_length "
        f"{r['config']['max_length']}, default variant **{r['config']['default_variant']}**.",
        "",
        f"## Fidelity and speed (first {r['n_speed_texts']} texts of banking77/test)",
        "",
        "| variant | size | mean cosine vs reference | min cosine | texts/s |",
        "|---|---|---|---|---|",
        f"| reference ({v['reference']['what']}) | | 1 | 1 | {v['reference']['texts_per_s']} |",
    ]
    for name, m in v.items():
        if name == "reference":
            continue
        c = m["cosine_vs_reference"]
        lines.append(
            f"| ONNX {name} (`{m['file']}`) | {m['size_mb']} MB | {c['mean']} | "
            f"{c['min']} | {m['texts_per_s']} |"
        )
    lines += [
        "",
        f"## K-means, true K={r['k']}, on all {r['n_cluster_texts']} banking77 test texts",
        "",
        f"{r['kmeans']}; × 100, mean ± std over seeds.",
        "",
        "| embeddings | ACC | NMI | ARI |",
        "|---|---|---|---|",
    ]
    for name, m in v.items():
        if "kmeans" in m:
            km = m["kmeans"]
            label = "sentence-transformers reference" if name == "reference" else f"ONNX {name}"
            lines.append(
                f"| {label} | {km['acc']} ± {km['acc_std']} | {km['nmi']} ± "
                f"{km['nmi_std']} | {km['ari']} ± {km['ari_std']} |"
            )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
