"""The CLI over fake backends: run, outputs, errors as one clear line, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intentlocal import api, cli
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from tests.conftest import SUPPORT_TEXTS


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "build_backends", lambda s: (FakeEmbedder(), FakeGenerator()))


def _csv(tmp_path: Path) -> Path:
    p = tmp_path / "in.csv"
    p.write_text("id,utterance\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(SUPPORT_TEXTS)))
    return p


def test_run_writes_csv_and_json(tmp_path: Path, fakes, capsys) -> None:
    out = tmp_path / "out"
    code = cli.main(["run", str(_csv(tmp_path)), "--k", "4", "--neighbours", "3",
                     "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "run1_clusters.json").read_text())
    assert len(doc["texts"]) == len(SUPPORT_TEXTS) and len(doc["clusters"]) == 4
    assert doc["settings"]["neighbours"] == 3
    kept = doc["clustering"]["clusterer"]
    assert doc["clustering"]["k"] == 4 and kept in doc["clustering"]["scores"]
    csv_text = (out / "run1_clusters.csv").read_text()
    assert csv_text.startswith("index,text,cluster_id,cluster_name,labels")
    printed = capsys.readouterr().out
    assert "Clusters" in printed and f"4 clusters (given; by {kept})" in printed


@pytest.mark.parametrize(("flags", "expected"), [([], True), (["--no-label-splits"], False)])
def test_no_label_splits_flag(tmp_path: Path, fakes, flags: list[str], expected: bool) -> None:
    out = tmp_path / "out"
    assert cli.main(["run", str(_csv(tmp_path)), "--k", "4", "--neighbours", "3",
                     "--out", str(out), *flags]) == 0
    doc = json.loads((out / "run1_clusters.json").read_text())
    assert doc["settings"]["label_splits"] is expected


@pytest.mark.parametrize("selector", ["llm", "shared"])
def test_selector_flag(tmp_path: Path, fakes, selector: str) -> None:
    out = tmp_path / "out"
    assert cli.main(["run", str(_csv(tmp_path)), "--k", "4", "--neighbours", "3",
                     "--out", str(out), "--selector", selector]) == 0
    doc = json.loads((out / "run1_clusters.json").read_text())
    assert doc["settings"]["selector"] == selector


def test_auto_k_neighbours_flag(tmp_path: Path, fakes) -> None:
    out = tmp_path / "out"
    assert cli.main(["run", str(_csv(tmp_path)), "--neighbours", "3", "--out", str(out),
                     "--auto-k-neighbours", "4"]) == 0
    doc = json.loads((out / "run1_clusters.json").read_text())
    assert doc["settings"]["auto_k_neighbours"] == 4
    assert cli.main(["run", str(_csv(tmp_path)), "--auto-k-neighbours", "-1"]) != 0


@pytest.mark.parametrize("has_amx", [True, False])
def test_a_build_with_amx_kernels_is_pointed_to_the_faster_build(
    tmp_path: Path, fakes, capsys, monkeypatch, has_amx: bool
) -> None:
    from intentlocal.backends import llm

    monkeypatch.setattr(llm, "build_has_amx", lambda: has_amx)
    assert cli.main(["run", str(_csv(tmp_path)), "--k", "4", "--neighbours", "3",
                     "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert ("Intel CPUs with AMX" in err) is has_amx


def test_a_busy_cpu_is_said_before_labelling(tmp_path: Path, fakes, capsys,
                                             monkeypatch) -> None:
    import os

    from intentlocal.backends import cpu

    monkeypatch.setattr(cpu, "cpu_in_use", lambda *a, **k: None)  # cannot be read
    assert cpu.busy_cpu_note(cores=2) is None

    args = ["run", str(_csv(tmp_path)), "--k", "4", "--neighbours", "3"]
    monkeypatch.setattr(cpu, "cpu_in_use", lambda *a, **k: 0.3)
    assert cli.main([*args, "--out", str(tmp_path / "idle")]) == 0
    assert "CPU is already busy" not in capsys.readouterr().err
    monkeypatch.setattr(cpu, "cpu_in_use", lambda *a, **k: 64.0)
    assert cli.main([*args, "--out", str(tmp_path / "busy")]) == 0
    err = capsys.readouterr().err
    assert err.count(f"about 64.0 of {os.cpu_count()} cores in use") == 1


def test_other_work_starting_mid_run_is_said(tmp_path: Path, fakes, capsys,
                                             monkeypatch) -> None:
    """The watch's note reaches the terminal on a line of its own (the runner's events
    carry it; tests/unit/test_busy_cpu.py has the watch itself)."""
    from intentlocal.backends import cpu
    from intentlocal.pipeline import runner

    clock = iter(range(0, 10_000, 30))
    t = [0]

    def tick() -> float:
        t[0] = next(clock)
        return float(t[0])

    # from the second look on, other work keeps 1.5 cores busy beside the run
    monkeypatch.setattr(runner, "CpuWatch", lambda: cpu.CpuWatch(
        every=1.0, cores=2, machine=lambda: 1.5 * t[0], own=lambda: 0.0, clock=tick))
    assert cli.main(["run", str(_csv(tmp_path)), "--k", "4", "--neighbours", "3",
                     "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().err.splitlines()
    said = [ln for ln in lines if "other work started" in ln]
    assert said == ["  note: other work started using the CPU (about 1.5 of 2 cores "
                    "beside this run); the run slows until it ends"]


def test_bad_input_is_one_clear_error(tmp_path: Path, fakes, capsys) -> None:
    p = tmp_path / "x.csv"
    p.write_text("id,body\n1,hi\n")
    assert cli.main(["run", str(p), "--column", "text"]) == 2
    err = capsys.readouterr().err
    assert "error: Cannot read the input:" in err and "no column 'text'" in err
    assert "Traceback" not in err


def test_unknown_model_gives_hint(tmp_path: Path, capsys, minilm_dir) -> None:
    # the embedder is a fetched folder, so the test does not depend on models/ being filled
    assert cli.main(["run", str(_csv(tmp_path)), "--llm", "nope-7b", "--embedder",
                     str(minilm_dir)]) == 2
    assert "unknown LLM 'nope-7b'" in capsys.readouterr().err


def test_corrupt_gguf_is_a_clear_error(tmp_path: Path, capsys, minilm_dir) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model at all")
    code = cli.main(["run", str(_csv(tmp_path)), "--llm", str(bad), "--embedder",
                     str(minilm_dir), "--k", "2"])
    assert code == 2
    err = capsys.readouterr().err
    assert "is not a GGUF file" in err and str(bad) in err


def test_resume_without_unfinished_run(capsys) -> None:
    assert cli.main(["run", "--resume"]) == 2
    assert "no unfinished run" in capsys.readouterr().err


def test_models_list(capsys) -> None:
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "qwen2.5-coder-0.5b" in out and "embeddinggemma-300m" in out


def test_models_alone_lists_and_names_the_embedders_variant(  # type: ignore[no-untyped-def]
        capsys, tmp_path, monkeypatch, exported_folder) -> None:
    """`intentlocal models` lists (it used to stop on a missing action); an exported
    embedder shows which ONNX variant runs use, since its recorded pick can be overruled
    (onnx_embedder.default_variant)."""
    exported_folder(tmp_path / "embeddinggemma-300m", "fp32", 0.998,
                    fp32_bytes=2_000_000, int8_bytes=1_000_000)
    monkeypatch.setattr("intentlocal.backends.fetch.is_installed",
                        lambda name: name == "embeddinggemma-300m")
    monkeypatch.setattr("intentlocal.backends.fetch.model_dir", lambda name: tmp_path / name)
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "embeddinggemma-300m:int8  exported (1 MB, mean cosine 0.9980" in out
    assert "used by default" in out.split("embeddinggemma-300m:int8")[1].splitlines()[0]
    assert "--embedder embeddinggemma-300m:fp32" in out


def test_closed_pipe_is_not_a_traceback() -> None:
    """`intentlocal models list | head`: the reader leaves first; no traceback, SIGPIPE's
    status. The read end is closed before the command starts, so every write fails."""
    import os
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([sys.executable, "-m", "intentlocal", "models", "list"],
                              stdout=w, stderr=subprocess.PIPE, text=True, timeout=60,
                              check=False)
    finally:
        os.close(w)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_summary_line_names_the_clusterer_and_hdbscans_own_count() -> None:
    from intentlocal.api import start_run
    from intentlocal.config import Settings
    from intentlocal.ingest import Corpus
    from intentlocal.store import Store

    stats = {"calls": 7, "prompt_tokens": 100, "completion_tokens": 20}
    scores = {"kmeans": {"silhouette": 0.2, "modularity": 0.7},
              "umap-hdbscan": {"silhouette": 0.3, "modularity": 0.8, "groups_found": 54}}
    store = Store()
    corpus = Corpus(["a", "b", "c"], [1, 2, 3], "mem")
    auto = start_run(store, corpus, Settings(k="auto"))
    store.set_stage(auto, "cluster", "done", 1.0,
                    {"k": 62, "clusterer": "umap-hdbscan", "scores": scores})
    line = cli.summary_line(store, auto, 1, stats)
    assert line.startswith("62 clusters (estimated; by umap-hdbscan; HDBSCAN alone finds 54), ")
    split = {**scores, "umap-hdbscan": {**scores["umap-hdbscan"], "split": "labels"}}
    guided = start_run(store, corpus, Settings(k="auto"))
    store.set_stage(guided, "cluster", "done", 1.0,
                    {"k": 62, "clusterer": "umap-hdbscan", "scores": split})
    assert cli.summary_line(store, guided, 1, stats).startswith(
        "62 clusters (estimated; by umap-hdbscan; groups split where the labels differ; "
        "HDBSCAN alone finds 54), ")
    assert "7 LLM calls" in line
    given = start_run(store, corpus, Settings(k="54"))
    store.set_stage(given, "cluster", "done", 1.0,
                    {"k": 54, "clusterer": "kmeans", "scores": scores})
    # no second opinion to give when HDBSCAN agrees with K
    assert cli.summary_line(store, given, 1, stats).startswith("54 clusters (given; by kmeans), ")


@pytest.mark.parametrize("join", ["text", "mix"])
def test_join_flags(tmp_path: Path, fakes, join: str) -> None:
    out = tmp_path / "out"
    assert cli.main(["run", str(_csv(tmp_path)), "--k", "4", "--neighbours", "3",
                     "--out", str(out), "--join", join, "--join-weight", "0.5"]) == 0
    doc = json.loads((out / "run1_clusters.json").read_text())
    assert doc["settings"]["join"] == join and doc["settings"]["join_weight"] == 0.5


def test_speaker_keeps_one_side_of_a_transcript(tmp_path: Path, fakes, capsys) -> None:
    p = tmp_path / "calls.csv"
    rows = [("agent", "Thank you for calling, how can I help you today?")] * 3 + [
        ("customer", t) for t in SUPPORT_TEXTS
    ]
    p.write_text("speaker,text\n" + "".join(f'{s},"{t}"\n' for s, t in rows))
    out = tmp_path / "out"
    assert cli.main(["run", str(p), "--speaker", "customer", "--k", "4", "--neighbours", "3",
                     "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"note: kept the turns of customer: {len(SUPPORT_TEXTS)} of {len(rows)}" in err
    doc = json.loads((out / "run1_clusters.json").read_text())
    assert [t["text"] for t in doc["texts"]] == list(SUPPORT_TEXTS)
    assert [t["source_line"] for t in doc["texts"]] == list(range(5, 5 + len(SUPPORT_TEXTS)))
    assert cli.main(["runs"]) == 0
    assert "calls.csv, speaker customer" in capsys.readouterr().out
    assert cli.main(["history", "1", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["text"] == SUPPORT_TEXTS[2] and doc["source_line"] == 7
    assert doc["speaker"] == "customer"
    assert doc["source"].endswith("calls.csv") and doc["history"][0]["iteration"] == 0


def test_unknown_speaker_stores_no_run(tmp_path: Path, fakes, capsys) -> None:
    p = tmp_path / "calls.csv"
    p.write_text("speaker,text\nagent,hello\ncustomer,my card\n")
    assert cli.main(["run", str(p), "--speaker", "caller"]) == 2
    err = capsys.readouterr().err
    assert "no turn is by caller; the speakers in column 'speaker' are" in err
    assert "Traceback" not in err
    from intentlocal.store import Store

    assert Store().runs() == []


def test_all_turns_kept_say_whose_turns_each_cluster_holds(tmp_path: Path, fakes, capsys,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the table's cells unwrapped
    p = tmp_path / "calls.csv"
    rows = [("agent", "Thank you for calling, how can I help you today?")] * 6 + [
        ("customer", t) for t in SUPPORT_TEXTS
    ]
    p.write_text("speaker,text\n" + "".join(f'{s},"{t}"\n' for s, t in rows))
    out = tmp_path / "out"
    assert cli.main(["run", str(p), "--k", "5", "--neighbours", "3", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "note: column 'speaker' names the speakers: customer (16), agent (6)" in captured.err
    import csv

    with open(out / "run1_clusters.csv", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [r["speaker"] for r in got] == [s for s, _ in rows]
    agent = [r["speaker"] for r in got if r["cluster_id"] == got[0]["cluster_id"]]
    share = round(100 * agent.count("agent") / len(agent))
    assert "speakers" in captured.out and f"agent {share} %" in captured.out
    assert [int(r["source_line"]) for r in got] == list(range(2, 2 + len(rows)))
