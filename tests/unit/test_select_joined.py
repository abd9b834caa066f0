"""scripts/select_joined.py: the default clusterer on a bench run's "text (labels)"
vectors, read back from the run's cache; refused for another dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intentlocal import api, cli, paths
from intentlocal.backends import registry
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from intentlocal.errors import InputError
from scripts import select_joined
from tests.conftest import SUPPORT_TEXTS


def _bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(api, "build_backends", lambda s: (FakeEmbedder(), FakeGenerator()))
    data = tmp_path / "set" / "test.jsonl"
    data.parent.mkdir()
    data.write_text("".join(json.dumps({"text": t, "label": t.split()[1]}) + "\n"
                            for t in SUPPORT_TEXTS))
    assert cli.main(["bench", str(data), "--max-iterations", "1", "--neighbours", "3",
                     "--out", str(tmp_path / "reports")]) == 0
    return data


def test_rows_for_a_bench_run_from_its_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    data = _bench(tmp_path, monkeypatch)
    capsys.readouterr()  # the bench's own table
    emb = FakeEmbedder()
    monkeypatch.setattr(registry, "load_embedder", lambda ref, **kw: emb)
    out = tmp_path / "rows.json"
    assert select_joined.main([str(data), f"{paths.store_path()}:1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["pipeline"], r["k_mode"]) for r in rows] == [
        ("select clusterer, refined labels guide the splits", "true K"),
        ("select clusterer, refined labels guide the splits", "auto K"),
        ("select clusterer, refined labels ⊕ text", "true K"),
        ("select clusterer, refined labels ⊕ text", "auto K")]
    assert all(0 <= r["acc"] <= 100 and r["chosen"] for r in rows)
    assert sum(emb.calls) == 0  # the bench embedded both inputs already
    assert capsys.readouterr().out.count("| select clusterer") == 4


def test_refuses_a_run_of_other_texts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _bench(tmp_path, monkeypatch)
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"text": t + " please", "label": "x"}) + "\n"
                             for t in SUPPORT_TEXTS))
    monkeypatch.setattr(registry, "load_embedder", lambda ref, **kw: FakeEmbedder())
    with pytest.raises(InputError, match="was not made from"):
        select_joined.main([str(other), f"{paths.store_path()}:1"])
    assert data.exists()
