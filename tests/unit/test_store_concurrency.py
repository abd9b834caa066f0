"""Two processes on one run store: both runs finish, nothing is corrupted, and a
writer that cannot get the lock gets a clear message instead of a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from intentlocal.errors import StoreError
from intentlocal.store import Store
from tests.conftest import SUPPORT_TEXTS

FAKE_CLI = """
import sys, time
from intentlocal import api
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
class Slow(FakeGenerator):
    def generate(self, *a, **k):
        time.sleep(0.01)
        return super().generate(*a, **k)
api.build_backends = lambda s: (FakeEmbedder(), Slow())
from intentlocal.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_two_runs_at_once_on_one_store(tmp_path: Path, isolated_home: Path) -> None:
    data = tmp_path / "in.txt"
    data.write_text("\n".join(SUPPORT_TEXTS * 2) + "\n")
    env = {**os.environ, "INTENTLOCAL_HOME": str(isolated_home)}
    procs = [subprocess.Popen([sys.executable, "-c", FAKE_CLI, "run", str(data), "--k", "4",
                               "--neighbours", "3", "--out", str(tmp_path / f"o{i}")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-1500:]
    store = Store()
    assert store.integrity_ok()
    runs = store.runs()
    assert [r.status for r in runs] == ["finished", "finished"]
    assert store.assignments(runs[0].id) == store.assignments(runs[1].id)


def test_blocked_writer_gets_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    holder = Store(path)
    holder.db.execute("BEGIN IMMEDIATE")
    try:
        other = Store(path, timeout=0.2)
        with pytest.raises(StoreError, match=r"busy.*another intentlocal is writing"):
            other.update_run(1, status="x")
    finally:
        holder.db.execute("ROLLBACK")


def test_corrupt_store_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the run store"):
        Store(path)


def test_reader_while_a_run_writes(tmp_path: Path, isolated_home: Path) -> None:
    """The TUI's case: one process writes a run, another keeps reading it."""
    data = tmp_path / "in.txt"
    data.write_text("\n".join(SUPPORT_TEXTS * 3) + "\n")
    env = {**os.environ, "INTENTLOCAL_HOME": str(isolated_home)}
    proc = subprocess.Popen([sys.executable, "-c", FAKE_CLI, "run", str(data), "--k", "4",
                             "--neighbours", "3", "--max-iterations", "2",
                             "--out", str(tmp_path / "o")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reads = 0
    seen_steps: list[int] = []
    while proc.poll() is None:
        try:
            store = Store(timeout=5)
        except StoreError:
            continue  # the writer is creating the schema
        runs = store.runs()
        if runs:
            run_id = runs[0].id
            n = len(store.uniques(run_id))
            if n:
                store.history(run_id, 0)
                seen_steps.append(len(store.steps(run_id, 0)))
            store.clusters(run_id)
            reads += 1
        store.db.close()
    _, err = proc.communicate()
    assert proc.returncode == 0, err[-1500:]
    assert reads > 5
    assert seen_steps == sorted(seen_steps)  # the reader saw the run grow, never shrink
    store = Store()
    assert store.integrity_ok()
    assert store.runs()[0].status == "finished"


def test_sigterm_marks_the_run_interrupted_and_it_resumes(tmp_path: Path,
                                                         isolated_home: Path) -> None:
    """`kill` (SIGTERM) ends a run like Ctrl-C: status interrupted, finished calls kept."""
    import signal
    import time

    data = tmp_path / "in.txt"
    data.write_text("\n".join(f"{t} {i}" for i in range(4) for t in SUPPORT_TEXTS) + "\n")
    env = {**os.environ, "INTENTLOCAL_HOME": str(isolated_home)}
    args = [sys.executable, "-c", FAKE_CLI.replace("0.01", "0.05"), "run", str(data),
            "--k", "4", "--neighbours", "3", "--out", str(tmp_path / "o")]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    done = 0
    while done < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        try:
            store = Store(timeout=5)
            runs = store.runs()
            done = len(store.steps(runs[0].id, 0)) if runs else 0
            store.db.close()
        except StoreError:
            continue
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-1500:]
    assert "resume with `intentlocal run --resume" in err
    store = Store()
    run = store.runs()[0]
    assert run.status == "interrupted"
    kept = len(store.steps(run.id, 0))
    assert kept >= 3
    store.db.close()
    resumed = subprocess.run([sys.executable, "-c", FAKE_CLI, "run", "--resume", str(run.id),
                              "--out", str(tmp_path / "o")], env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-1500:]
    assert Store().runs()[0].status == "finished"
