"""Crash-safety harness: SIGKILL a real `intentlocal run` at random moments in
every stage, resume after each kill, and check that nothing was lost or redone.

Each kill targets a stage (embedding, initial labels, every refinement
iteration and its embedding, clustering, writing the results) and lands at a
random moment inside it, drawn from that stage's duration in an uninterrupted
reference run. After every kill the store must pass SQLite's integrity check;
after every resume, every step and label stored before the kill must still be
there unchanged (a redone LLM call would rewrite its step's timestamp). At the
end the clusters, labels and output files must equal the reference run's, and
the LLM calls made across all processes may exceed the reference's only by the
calls that were in flight when a kill landed: the batch being decoded (`parallel`
calls, recorded together).

The child is the real CLI (`intentlocal run`) in a real process, with a thin
trace around it (which stage started, each LLM call) so the harness knows where
it is. With ``--real`` it uses the small real models; otherwise slowed fakes,
which make the 20 kills take about a minute (the test in tests/integration).

    python scripts/kill_harness.py --kills 20 [--real] [--report reports/kill_harness.md]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The child: the real CLI, plus a trace (stage starts, LLM calls) appended to a
# file, plus optional slowed fakes. The sleeps around clustering and writing
# only widen those stages' windows so a random kill can land in them.
CHILD = r"""
import os, sys, time
TRACE = os.environ["HARNESS_TRACE"]
FAKE = os.environ.get("HARNESS_FAKES") == "1"
def trace(what):
    with open(TRACE, "a") as fh:
        fh.write(f"{time.monotonic():.4f} {what}\n")
from intentlocal import api, results
from intentlocal.pipeline import runner
_timed = runner.Runner._timed
def timed(self, run_id, stage, fn, *args, **detail):
    trace("stage " + stage)
    return _timed(self, run_id, stage, fn, *args, **detail)
runner.Runner._timed = timed
_cluster = runner.Runner._cluster
def cluster(self, *a, **k):
    trace("stage cluster")
    time.sleep(0.3)
    return _cluster(self, *a, **k)
runner.Runner._cluster = cluster
_write = results._atomic_write
def atomic_write(path, data):
    trace("stage write")
    time.sleep(0.15)
    return _write(path, data)
results._atomic_write = atomic_write
class Traced:
    def __init__(self, inner, delay):
        self.inner, self.delay, self.model_id = inner, delay, inner.model_id
    def generate(self, *a, **k):
        trace("batch")
        trace("call")
        time.sleep(self.delay)
        return self.inner.generate(*a, **k)
    def generate_many(self, requests):
        # A batch is recorded all or none: every call of it is in flight until then.
        trace("batch")
        many = getattr(self.inner, "generate_many", None)
        if many is not None:
            for _ in requests:
                trace("call")
            return many(requests)
        out = []
        for r in requests:
            trace("call")
            time.sleep(self.delay)
            out.append(self.inner.generate(r.static_messages, r.messages, r.grammar,
                                           r.max_tokens))
        return out
class SlowEmbedder:
    def __init__(self, inner, delay):
        self.inner, self.delay, self.model_id = inner, delay, inner.model_id
    def embed(self, texts):
        time.sleep(self.delay)
        return self.inner.embed(texts)
_build = api.build_backends
def build(settings):
    if FAKE:
        from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
        return SlowEmbedder(FakeEmbedder(), 0.4), Traced(FakeGenerator(), 0.03)
    emb, gen = _build(settings)
    return emb, Traced(gen, 0.0)
api.build_backends = build
from intentlocal.cli import main
sys.exit(main(sys.argv[1:]))
"""

# How many kills each stage gets (20 in all); stages absent from a run are skipped.
PLAN = {
    "embed": 2, "initial": 3, "embed-1": 1, "refine-1": 3, "embed-2": 1, "refine-2": 3,
    "embed-final": 1, "cluster": 3, "write": 3,
}


@dataclass
class Report:
    kills_attempted: int = 0
    kills_landed: int = 0
    killed_in: Counter = field(default_factory=Counter)
    resumes: int = 0
    integrity_failures: int = 0
    steps_lost_or_changed: int = 0
    labels_lost: int = 0
    calls_reference: int = 0
    calls_total: int = 0
    calls_in_flight_at_kill: int = 0
    same_result: bool = False
    seconds: float = 0.0

    @property
    def calls_repeated(self) -> int:
        """Calls beyond the reference run's that no kill explains."""
        return max(0, self.calls_total - self.calls_reference - self.calls_in_flight_at_kill)


def _child(home: Path, trace: Path, fakes: bool, args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "INTENTLOCAL_HOME": str(home), "HARNESS_TRACE": str(trace),
           "HARNESS_FAKES": "1" if fakes else "0", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _trace(path: Path) -> list[tuple[float, str]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        t, _, what = line.partition(" ")
        out.append((float(t), what))
    return out


def _snapshot(home: Path) -> tuple[set, set, str]:
    db = sqlite3.connect(home / "runs.sqlite3")
    try:
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
        steps = set(db.execute("SELECT uid, iteration, called, output, candidates_json,"
                               " created_at FROM steps").fetchall())
        labels = set(db.execute("SELECT uid, label, iteration, source_uid FROM labels"))
    except sqlite3.OperationalError:  # killed before the schema existed
        return set(), set(), "ok"
    finally:
        db.close()
    return steps, labels, ok


def _has_run(home: Path) -> bool:
    if not (home / "runs.sqlite3").exists():
        return False
    db = sqlite3.connect(home / "runs.sqlite3")
    try:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] > 0
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


def _result(home: Path, out: Path) -> tuple:
    db = sqlite3.connect(home / "runs.sqlite3")
    assign = [r[0] for r in db.execute("SELECT cluster_id FROM assignments ORDER BY idx")]
    names = db.execute("SELECT cluster_id, name, size, top_labels_json FROM clusters"
                       " ORDER BY cluster_id").fetchall()
    labels = sorted(db.execute("SELECT uid, label, iteration, source_uid FROM labels"))
    db.close()
    csv = (out / "run1_clusters.csv").read_text()
    doc = json.loads((out / "run1_clusters.json").read_text())
    return assign, names, labels, csv, doc["clusters"], doc["texts"]


def _durations(trace: list[tuple[float, str]], end: float) -> dict[str, float]:
    stages = [(t, w.split(" ", 1)[1]) for t, w in trace if w.startswith("stage ")]
    out: dict[str, float] = {}
    for (t, name), nxt in zip(stages, [*stages[1:], (end, "")], strict=True):
        out[name] = out.get(name, 0.0) + nxt[0] - t
    return out


def run_harness(workdir: Path, data: Path, run_args: list[str], kills: int = 20,
                seed: int = 0, fakes: bool = True, timeout: float = 900) -> Report:
    started = time.monotonic()
    rng = random.Random(seed)
    rep = Report()
    args = ["run", str(data), *run_args]

    ref_home, ref_out, ref_trace = workdir / "ref", workdir / "ref_out", workdir / "ref.trace"
    ref = _child(ref_home, ref_trace, fakes, [*args, "--out", str(ref_out)])
    _, err = ref.communicate(timeout=timeout)
    if ref.returncode != 0:
        raise RuntimeError(f"reference run failed:\n{err[-3000:]}")
    ref_events = _trace(ref_trace)
    rep.calls_reference = sum(1 for _, w in ref_events if w == "call")
    dur = _durations(ref_events, time.monotonic())
    targets = [s for s, n in PLAN.items() if s in dur for _ in range(n)]
    targets = (targets * (kills // max(1, len(targets)) + 1))[:kills]

    home, out = workdir / "killed", workdir / "out"
    cmd = [*args, "--out", str(out)]
    prev_steps: set = set()
    prev_labels: set = set()
    finished = False
    for i, stage in enumerate(targets):
        trace = workdir / f"kill{i}.trace"
        proc = _child(home, trace, fakes, cmd)
        rep.kills_attempted += 1
        deadline = time.monotonic() + timeout
        delay = rng.uniform(0.0, dur[stage] / PLAN.get(stage, 1))
        armed_at = None
        while proc.poll() is None and time.monotonic() < deadline:
            events = _trace(trace)
            if armed_at is None and any(w == f"stage {stage}" for _, w in events):
                armed_at = time.monotonic()
            if armed_at is not None and time.monotonic() - armed_at >= delay:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait()
        events = _trace(trace)
        rep.calls_total += sum(1 for _, w in events if w == "call")
        if proc.returncode == -signal.SIGKILL:
            rep.kills_landed += 1
            last = [w for _, w in events if w.startswith("stage ")]
            rep.killed_in[last[-1].split(" ", 1)[1] if last else "start-up"] += 1
            if events and events[-1][1] == "call":
                # the calls of the batch the kill interrupted (a batch is recorded whole)
                since = [w for _, w in events][::-1]
                rep.calls_in_flight_at_kill += since.index("batch")
        elif proc.returncode != 0:
            raise RuntimeError(f"run exited with {proc.returncode}:\n{proc.stderr.read()[-3000:]}")
        if (home / "runs.sqlite3").exists():
            steps, labels, ok = _snapshot(home)
            rep.integrity_failures += ok != "ok"
            rep.steps_lost_or_changed += len(prev_steps - steps)
            rep.labels_lost += len(prev_labels - labels)
            prev_steps, prev_labels = steps, labels
        if proc.returncode == 0:
            finished = True
            break
        if "--resume" not in cmd and _has_run(home):
            cmd = ["run", "--resume", "1", "--out", str(out)]
        rep.resumes += 1

    if not finished:  # the last resume, left to finish
        trace = workdir / "final.trace"
        proc = _child(home, trace, fakes, cmd)
        _, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"final resume failed:\n{err[-3000:]}")
        rep.calls_total += sum(1 for _, w in _trace(trace) if w == "call")
        steps, labels, ok = _snapshot(home)
        rep.integrity_failures += ok != "ok"
        rep.steps_lost_or_changed += len(prev_steps - steps)
        rep.labels_lost += len(prev_labels - labels)
    rep.same_result = _result(home, out) == _result(ref_home, ref_out)
    rep.seconds = round(time.monotonic() - started, 1)
    return rep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real", action="store_true", help="the small real models, not fakes")
    ap.add_argument("--workdir", default="/tmp/intentlocal-kill-harness")
    ap.add_argument("--report", help="write a markdown report here")
    a = ap.parse_args()
    import shutil

    work = Path(a.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "in.txt"
    data.write_text((REPO / "tests" / "data" / "kill_texts.txt").read_text())
    # --final mix: the run then has every stage, embed-final included, for kills to land in;
    # --selector llm: refinement is LLM calls, not one transaction of the default rule;
    # --join text: each embed-N re-embeds every text (the default mix embeds labels, cached
    # after embed-1, so a kill would seldom land in embed-2 or embed-final)
    run_args = ["--k", "6", "--max-iterations", "2", "--neighbours", "5", "--final", "mix",
                "--selector", "llm", "--join", "text"]
    if a.real:
        sys.path.insert(0, str(REPO))
        from intentlocal.backends.fetch import fetch
        from intentlocal.backends.manifest import load_manifest

        qwen = fetch("qwen2.5-coder-0.5b") / load_manifest()["qwen2.5-coder-0.5b"].files[0].path
        run_args += ["--embedder", str(fetch("minilm-l6-int8")), "--llm", str(qwen)]
    rep = run_harness(work, data, run_args, a.kills, a.seed, fakes=not a.real, timeout=3600)
    lines = [
        f"kills landed / attempted: {rep.kills_landed} / {rep.kills_attempted} "
        f"(resumed {rep.resumes} times)",
        "killed in: " + ", ".join(f"{s} {n}" for s, n in rep.killed_in.items()),
        f"integrity failures: {rep.integrity_failures}; steps lost or changed: "
        f"{rep.steps_lost_or_changed}; labels lost: {rep.labels_lost}",
        f"LLM calls: reference {rep.calls_reference}, all processes {rep.calls_total}, "
        f"in flight at a kill {rep.calls_in_flight_at_kill}, repeated {rep.calls_repeated}",
        f"same clusters, labels and output files as the uninterrupted run: {rep.same_result}",
        f"wall {rep.seconds} s ({'real models' if a.real else 'fakes'})",
    ]
    print("\n".join(lines))
    if a.report:
        Path(a.report).write_text(
            f"# Kill harness\n\n`python scripts/kill_harness.py --kills {a.kills}"
            f"{' --real' if a.real else ''} --seed {a.seed}`\n\n"
            + "\n".join(f"- {x}" for x in lines) + "\n"
        )
    ok = (rep.same_result and rep.integrity_failures == 0 and rep.steps_lost_or_changed == 0
          and rep.labels_lost == 0 and rep.calls_repeated == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
