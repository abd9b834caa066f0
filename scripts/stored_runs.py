"""What the experiment scripts that read finished runs share: their arguments
(``SET=STORE:RUN ...``, ``--data``, ``--seeds``, ``--report``) and how a report is
written (its JSON beside its Markdown, each with the command that made it).

Why one module: seven scripts had copied the same parsing and the same three-line
report tail, and a fix to one (the command line quoted for a shell) had to be made in
each.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent


def parser(doc: str, report: str, seeds: str | None = "0,1,2,3,4",
           runs: bool = True) -> argparse.ArgumentParser:
    """The shared arguments; ``report`` is the default report's file name under
    reports/, ``seeds`` None for a script without seeds."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if runs:
        ap.add_argument("runs", nargs="+", metavar="SET=STORE:RUN")
    ap.add_argument("--data", default=str(CHECKOUT.parent / "shared" / "data"))
    if seeds is not None:
        ap.add_argument("--seeds", default=seeds)
    ap.add_argument("--report", default=str(CHECKOUT / "reports" / report))
    return ap


def seed_list(text: str) -> list[int]:
    return [int(s) for s in text.split(",")]


def run_spec(spec: str) -> tuple[str, str, int]:
    """``SET=STORE:RUN`` as (set name, store path, run id); the store path may hold
    colons of its own, the run id never does."""
    name, _, where = spec.partition("=")
    path, _, run = where.rpartition(":")
    if not name or not path or not run.isdigit():
        raise SystemExit(f"expected SET=STORE:RUN (e.g. banking77=/work/runs.sqlite3:1), "
                         f"got {spec!r}")
    return name, path, int(run)


def run_specs(specs: list[str]) -> Iterator[tuple[str, str, int]]:
    return (run_spec(s) for s in specs)


def set_and_run(spec: str) -> tuple[str, str]:
    """``SET=STORE:RUN``, checked as ``run_spec`` checks it, as (set name, ``STORE:RUN``):
    the form ``label_distance.open_shared_run`` takes. A bare ``partition("=")`` let a
    malformed spec through to a traceback deep in the store's reader."""
    name, path, run = run_spec(spec)
    return name, f"{path}:{run}"


def command() -> str:
    """This process's command line, quoted so that it can be pasted into a shell."""
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def write_report(report: dict, path: str | Path, markdown: Callable[[dict], str]) -> None:
    """The report's JSON (every figure) beside its Markdown (the table a reader reads)."""
    p = Path(path)
    p.with_suffix(".json").write_text(json.dumps(report, indent=1))
    p.write_text(markdown(report))


def select_over_seeds(make: Callable[[int], Any], x: Any, k: int, seeds: Sequence[int],
                      gold: Sequence[str], uid_of: Any, labels: Any = None,
                      layout: Any = None) -> tuple[list[dict], list[str]]:
    """A select clusterer's partition of the distinct texts ``x`` at ``k`` for each seed,
    scored on every row (``uid_of``: each row's distinct text), with the candidate each
    seed kept. ``make(seed)``: the clusterer for that seed, a fresh one or one re-seeded.

    Why here: out_of_sample, umap_params and min_share each ran this loop; the figures
    they compare (the texts alone against the labels, paired by seed) must come from
    the same loop.
    """
    from intentlocal.pipeline.metrics import scores

    per, chosen = [], []
    for seed in seeds:
        sel = make(seed)
        part = sel.fit_predict(x, k, labels=labels, layout=layout)
        per.append(scores(gold, part[uid_of]))
        chosen.append(sel.chosen_)
    return per, chosen
