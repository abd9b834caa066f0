"""kill -9 a real `intentlocal run` during the LLM stage, resume, compare.

Real processes, real SIGKILL, the real small models. A finished LLM step is
never redone (its row stays as it was, and the resumed process only adds the
missing ones) and the final clusters equal an uninterrupted run's.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SUPPORT_TEXTS

pytestmark = pytest.mark.integration

TEXTS = [*SUPPORT_TEXTS, "my card got stuck in the atm", "the atm kept my card",
         "cash machine swallowed my card", "how do I verify my identity",
         "what documents do you need to verify me", "identity check failed"]


def _cli(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "INTENTLOCAL_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "intentlocal", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _steps(home: Path) -> list[tuple]:
    if not (home / "runs.sqlite3").exists():
        return []
    db = sqlite3.connect(home / "runs.sqlite3")
    try:
        return db.execute("SELECT uid, iteration, output, created_at FROM steps"
                          " ORDER BY iteration, uid").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def _result(home: Path) -> tuple[list, list]:
    db = sqlite3.connect(home / "runs.sqlite3")
    assign = [r[0] for r in db.execute("SELECT cluster_id FROM assignments ORDER BY idx")]
    labels = db.execute("SELECT uid, label, iteration FROM labels ORDER BY uid, label").fetchall()
    db.close()
    return assign, labels


def test_kill_9_during_labelling_then_resume(tmp_path: Path, minilm_dir, qwen_path) -> None:
    data = tmp_path / "in.txt"
    data.write_text("\n".join(TEXTS) + "\n")
    args = ["run", str(data), "--embedder", str(minilm_dir), "--llm", str(qwen_path),
            "--k", "6", "--max-iterations", "1", "--neighbours", "5", "--out", str(tmp_path)]

    ref_home = tmp_path / "ref"
    ref = _cli(ref_home, *args)
    _, err = ref.communicate(timeout=900)
    assert ref.returncode == 0, err[-2000:]

    home = tmp_path / "killed"
    proc = _cli(home, *args)
    deadline = time.monotonic() + 600
    while len(_steps(home)) < 8:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _steps(home)
    assert 8 <= len(before) < len(_steps(ref_home))

    resumed = _cli(home, "run", "--resume", "--out", str(tmp_path))
    _, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, err[-2000:]
    after = _steps(home)
    assert set(before) <= set(after)  # finished steps untouched, not redone
    assert len(after) == len(_steps(ref_home))
    assert [s[:3] for s in after] == [s[:3] for s in _steps(ref_home)]
    assert _result(home) == _result(ref_home)
    db = sqlite3.connect(home / "runs.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT status FROM runs").fetchone()[0] == "finished"

    # The same texts again with another K: every initial question was answered in this
    # store, so the real model decodes none of them and writes the same labels.
    again = _cli(ref_home, *[a if a != "6" else "5" for a in args])
    _, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-2000:]
    db = sqlite3.connect(ref_home / "runs.sqlite3")
    first, second = (db.execute(
        "SELECT s.uid, s.output, s.reused_seconds, s.model_id FROM steps s WHERE run_id=?"
        " AND iteration=0 ORDER BY uid", (run,)).fetchall() for run in (1, 2))
    db.close()
    assert len(second) == len(first) > 0
    assert [r[:2] for r in second] == [r[:2] for r in first]
    assert all(r[2] is None for r in first) and all(r[2] is not None for r in second)
    assert {r[3] for r in second} == {r[3] for r in first}  # the model that wrote them
