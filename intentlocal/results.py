"""Run results as rows, tables and files (CSV / JSON), written atomically.

A full disk or an unwritable folder raises a clear error and leaves any
previous file untouched: the run itself is already safe in the store.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from intentlocal.errors import RunError
from intentlocal.store import Store


def result_rows(store: Store, run_id: int) -> list[dict[str, Any]]:
    info = store.run(run_id)
    texts = store.texts(run_id)
    assign = store.assignments(run_id)
    if not assign:
        raise RunError(
            f"run {run_id} has no clusters yet (status: {info.status})",
            hint="finish it with `intentlocal run --resume`",
        )
    names = {c["id"]: c["name"] for c in store.clusters(run_id)}
    label_sets = store.label_sets(run_id, len(store.uniques(run_id)), 10**6)
    origins = store.origins(run_id)
    return [
        {
            "index": idx,
            "text": text,
            "cluster_id": assign[idx],
            "cluster_name": names.get(assign[idx], ""),
            "labels": label_sets[uid],
            "source_line": origins[idx][0],
            "speaker": origins[idx][1],
        }
        for idx, uid, text in texts
    ]


def _atomic_write(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise RunError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="the run is safe in the store; free space or choose another --out, "
            "then export again with `intentlocal export`",
        ) from exc


def write_outputs(store: Store, run_id: int, out_dir: Path) -> tuple[Path, Path]:
    rows = result_rows(store, run_id)
    buf = io.StringIO()
    w = csv.writer(buf)
    # new columns last: scripts reading the first five columns by position keep working
    w.writerow(
        ["index", "text", "cluster_id", "cluster_name", "labels", "source_line", "speaker"]
    )
    for r in rows:
        w.writerow(
            [r["index"], r["text"], r["cluster_id"], r["cluster_name"], "; ".join(r["labels"]),
             "" if r["source_line"] is None else r["source_line"], r["speaker"] or ""]
        )
    csv_path = out_dir / f"run{run_id}_clusters.csv"
    json_path = out_dir / f"run{run_id}_clusters.json"
    for stale in (*out_dir.glob(f".{csv_path.name}.*"), *out_dir.glob(f".{json_path.name}.*")):
        stale.unlink(missing_ok=True)  # left by a process killed mid-write
    _atomic_write(csv_path, buf.getvalue())
    doc = {
        "run_id": run_id,
        "clusters": store.clusters(run_id),
        "texts": rows,
        "settings": store.run(run_id).settings,
        # K, whether it was estimated, and which clusterer the selection kept and why
        "clustering": store.clustering(run_id),
    }
    _atomic_write(json_path, json.dumps(doc, indent=1, ensure_ascii=False))
    return csv_path, json_path


def cluster_table(store: Store, run_id: int, examples: int = 3) -> list[dict[str, Any]]:
    """Clusters with their size, top labels, a few example texts (largest first) and,
    where the file said who spoke, each speaker's count."""
    rows = result_rows(store, run_id)
    by: dict[int, list[str]] = {}
    for r in rows:
        by.setdefault(r["cluster_id"], []).append(r["text"])
    who = speakers_by_cluster(rows)
    out = []
    for c in store.clusters(run_id):
        seen = Counter(by.get(c["id"], []))
        out.append({**c, "examples": [t for t, _ in seen.most_common(examples)],
                    "speakers": who.get(c["id"], [])})
    return out


def speakers_by_cluster(rows: list[dict[str, Any]]) -> dict[int, list[tuple[str, int]]]:
    """Each cluster's speakers, most frequent first; empty when the run has a single
    speaker or none, since then there is nothing to tell apart."""
    if len({r["speaker"] for r in rows if r["speaker"] is not None}) < 2:
        return {}
    by: dict[int, Counter[str]] = {}
    for r in rows:
        if r["speaker"] is not None:
            by.setdefault(r["cluster_id"], Counter())[r["speaker"]] += 1
    return {c: n.most_common() for c, n in by.items()}


def speaker_share(speakers: list[tuple[str, int]]) -> str:
    """"agent 100 %" or "customer 83 % · agent 17 %": the two largest shares."""
    total = sum(n for _, n in speakers)
    return " · ".join(f"{name} {round(100 * n / total)} %" for name, n in speakers[:2])


def describe_clusters(store: Store, run_id: int) -> str:
    """How many clusters a finished run made, how K came about and which clusterer made
    them, with HDBSCAN's own group count when it differs from K: a second opinion on K
    that the user should see wherever the result is shown (CLI and TUI alike); and
    whether the pseudo-labels chose which groups were split to reach K."""
    run = store.run(run_id)
    clustering = store.clustering(run_id)
    k = int(clustering.get("k", 0)) or len(store.clusters(run_id))
    k_given = run.settings.get("k", "auto") != "auto"
    kept = clustering.get("clusterer")
    scores = clustering.get("scores", {})
    found = [s["groups_found"] for s in scores.values() if "groups_found" in s]
    guided = bool(kept) and scores.get(kept, {}).get("split") == "labels"
    return (
        f"{k} clusters ({'given' if k_given else 'estimated'}"
        + (f"; by {kept}" if kept else "")
        + ("; groups split where the labels differ" if guided else "")
        + (f"; HDBSCAN alone finds {found[0]}" if found and found[0] != k else "") + ")"
    )
