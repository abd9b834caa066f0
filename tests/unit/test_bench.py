"""`intentlocal bench` over fakes: gold labels only score, every row is measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from intentlocal import api, cli
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from intentlocal.pipeline.augment import concat_labels, label_features, label_key
from intentlocal.pipeline.cluster import SelectClusterer
from tests.conftest import SUPPORT_TEXTS


def test_label_features_weigh_shared_rare_labels_and_ignore_spelling() -> None:
    sets = [["lost_card", "card"], ["lostcard", "cards"], ["card"], []]
    assert label_key("exchange_rates") == label_key("exchangerate") == "exchangerate"
    assert label_key("access_pass") == "accesspass"
    f = label_features(sets)
    assert f.shape == (4, 2)  # "lost_card" and "lostcard" are one column
    np.testing.assert_allclose(f[0], f[1])
    assert f[0] @ f[1] == pytest.approx(1.0)
    assert f[0] @ f[2] < 0.7  # sharing only the common label counts for less
    assert not f[3].any()
    x = concat_labels(np.eye(4, 3, dtype=np.float32), sets, 0.5)
    assert x.shape == (4, 5)
    np.testing.assert_allclose(np.linalg.norm(x[0, 3:]), 0.5, rtol=1e-5)


def _bench_set(tmp_path: Path) -> Path:
    data = tmp_path / "set" / "test.jsonl"
    data.parent.mkdir(exist_ok=True)
    gold = [t.split()[1] for t in SUPPORT_TEXTS]
    data.write_text("".join(json.dumps({"text": t, "label": g}) + "\n"
                            for t, g in zip(SUPPORT_TEXTS, gold, strict=True)))
    return data


MAIN_ROWS = {"K-means on embeddings", "initial labels ⊕ text", "refined labels ⊕ text",
             "select clusterer on embeddings",
             "select clusterer, initial mix w=0.1 for umap-hdbscan only",
             "select clusterer, refined mix w=0.1 for umap-hdbscan only"}
ABLATION_ROWS = {"refined labels, tf-idf concat w=0.25", "refined labels, mix w=0.5",
                 "refined labels alone",
                 "select clusterer, refined mix w=0.1, labels guide the splits",
                 "select clusterer, refined labels guide the splits",
                 "select clusterer, refined labels ⊕ text"}


def test_bench_writes_every_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = FakeGenerator()
    emb = FakeEmbedder()
    emb.vectors_id = "fake-embedder:int8+x64q"  # type: ignore[attr-defined]
    monkeypatch.setattr(api, "build_backends", lambda s: (emb, gen))
    from intentlocal.backends import cpu

    monkeypatch.setattr(cpu, "cpu_in_use", lambda *a, **k: 64.0)  # other work running
    data = _bench_set(tmp_path)
    out = tmp_path / "reports"
    code = cli.main(["bench", str(data), "--max-iterations", "1", "--neighbours", "3",
                     "--ablations", "--out", str(out)])
    assert code == 0
    report = json.loads((out / f"bench_set_{len(SUPPORT_TEXTS)}_s0.json").read_text())
    names = {r["pipeline"] for r in report["rows"]}
    assert names >= MAIN_ROWS | ABLATION_ROWS
    # every select row has its consensus twin, from the same candidates' partitions
    assert {n.replace("select clusterer", "consensus clusterer")
            for n in names if n.startswith("select clusterer")} <= names
    assert not any("consensus" in r for r in report["rows"])  # popped into its own row
    kept = [r["chosen"] for r in report["rows"] if r["pipeline"].startswith("select")]
    assert kept and all(set(c) <= {*SelectClusterer().candidates, "consensus"} and c
                        for c in kept)
    assert all(0 <= r["acc"] <= 100 and r["k"] >= 1 for r in report["rows"])
    # each seed's scores beside the mean, so that two rows can be paired seed by seed
    from intentlocal.bench import SEEDS

    for r in report["rows"]:
        per = r["per_seed"]
        assert [p["seed"] for p in per] == list(SEEDS)
        for m in ("acc", "nmi", "ari"):
            assert abs(sum(p[m] for p in per) / len(per) - r[m]) < 1e-3
        if r["pipeline"].startswith("select"):
            assert {p["chosen"] for p in per} == set(r["chosen"])
    assert report["llm"]["calls"] == len(gen.calls) > 0
    assert "about 64.0 of" in report["busy_cpu_note"]  # its seconds were not alone
    # and the run's own look, when its method starts, is kept too
    assert len(report["cpu_notes"]) == 1 and "about 64.0 of" in report["cpu_notes"][0]
    md = (out / f"bench_set_{len(SUPPORT_TEXTS)}_s0.md").read_text()
    assert md.count("Not alone on the CPU, so its seconds are upper bounds") == 2
    assert md.startswith("## set:")
    # the report names the vectors' graph, not only the embedder setting (6 Dec)
    assert report["vectors"] == "fake-embedder:int8+x64q"
    assert "Embedder fake-embedder:int8+x64q, LLM" in md
    # the summary says which vectors each K estimate came from: a run's (the texts') first
    assert (f"K estimated on the texts' vectors, as a run on the defaults does: "
            f"{report['k_est_embeddings']} (error {report['k_est_embeddings_error_pct']} %)"
            in md)
    assert f"K estimated on refined labels ⊕ text: {report['k_est_refined']}" in md


def test_bench_by_default_the_issue_table_and_a_second_bench_reuses_the_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --ablations the rows of issue 7's table only; a second bench of the same
    set in the same store asks the LLM nothing and says what the labels first cost."""
    first, second = FakeGenerator(), FakeGenerator()
    gens = iter([first, second])
    monkeypatch.setattr(api, "build_backends", lambda s: (FakeEmbedder(), next(gens)))
    data = _bench_set(tmp_path)
    reports = []
    for out in (tmp_path / "a", tmp_path / "b"):
        assert cli.main(["bench", str(data), "--max-iterations", "1", "--neighbours", "3",
                         "--out", str(out)]) == 0
        reports.append(json.loads((out / f"bench_set_{len(SUPPORT_TEXTS)}_s0.json")
                                  .read_text()))
    names = {r["pipeline"] for r in reports[0]["rows"]}
    assert names >= MAIN_ROWS and not names & ABLATION_ROWS
    assert first.calls and not second.calls
    a, b = reports[0]["llm"], reports[1]["llm"]
    assert a["reused_calls"] == 0 and b["reused_calls"] == b["calls"] == a["calls"]
    assert b["reused_seconds"] == pytest.approx(a["llm_seconds"])
    assert reports[0]["rows"] == reports[1]["rows"]  # the same labels, the same table
    md = (tmp_path / "b" / f"bench_set_{len(SUPPORT_TEXTS)}_s0.md").read_text()
    assert f"{b['calls']} of them answered from the store's earlier answers" in md


def test_label_features_reduce_when_large() -> None:
    rng = np.random.default_rng(0)
    sets = [[f"l{rng.integers(600)}", f"m{rng.integers(600)}"] for _ in range(400)]
    exact = label_features(sets)
    reduced = label_features(sets, max_cells=10_000, dims=64)
    assert exact.shape == (400, 1200) or exact.shape[1] > 64
    assert reduced.shape == (400, 64)
    np.testing.assert_allclose(np.linalg.norm(reduced, axis=1), 1.0, rtol=1e-4)


def test_a_resumed_bench_keeps_the_runs_own_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The backends of a resumed bench are built from the run's stored settings, not
    from today's command line: a run's batches must not change between its halves."""
    built: list[int] = []

    def backends(settings):
        built.append(settings.parallel)
        return FakeEmbedder(), FakeGenerator()

    monkeypatch.setattr(api, "build_backends", backends)
    data = tmp_path / "set" / "test.jsonl"
    data.parent.mkdir()
    data.write_text("".join(json.dumps({"text": t, "label": t.split()[1]}) + "\n"
                            for t in SUPPORT_TEXTS))
    out = tmp_path / "reports"
    common = [str(data), "--max-iterations", "1", "--neighbours", "3", "--out", str(out)]
    assert cli.main(["bench", *common, "--parallel", "2"]) == 0
    capsys.readouterr()
    assert cli.main(["bench", *common, "--parallel", "3", "--resume", "1"]) == 0
    assert built == [2, 2]
    assert "ignored: parallel=3 (the run has 2)" in capsys.readouterr().err
    report = json.loads((out / f"bench_set_{len(SUPPORT_TEXTS)}_s0.json").read_text())
    assert report["settings"]["parallel"] == 2


def test_the_bench_clusters_distinct_texts_and_scores_every_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a run does: a repeated text is one point (UMAP is not indifferent to exact
    duplicates), and each of its rows is scored with its cluster."""
    from intentlocal.bench import kmeans_scores

    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
    gold = ["a", "a", "a", "b", "b", "c"]
    r = kmeans_scores(x, gold, 3, expand=[0, 0, 0, 1, 1, 2])
    assert r["acc"] == pytest.approx(100.0)
    with pytest.raises(ValueError):  # without expand the rows and points disagree
        kmeans_scores(x, gold, 3)

    monkeypatch.setattr(api, "build_backends", lambda s: (FakeEmbedder(), FakeGenerator()))
    data = tmp_path / "set" / "test.jsonl"
    data.parent.mkdir()
    texts = [*SUPPORT_TEXTS, SUPPORT_TEXTS[0], SUPPORT_TEXTS[1].upper()]
    data.write_text("".join(json.dumps({"text": t, "label": t.split()[1].lower()}) + "\n"
                            for t in texts))
    assert cli.main(["bench", str(data), "--max-iterations", "1", "--neighbours", "3",
                     "--no-llm", "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / f"bench_set_{len(texts)}_s0_nollm.json").read_text())
    assert report["n_texts"] == len(texts) and report["n_distinct"] == len(SUPPORT_TEXTS)
