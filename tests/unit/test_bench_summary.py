"""scripts/bench_summary.py: every cell comes from the bench report it names."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.bench_summary import main


def _report(name: str, acc: float, with_joined: bool) -> dict:
    rows = [{"pipeline": "select clusterer on embeddings", "k_mode": m, "k": k,
             "acc": acc, "acc_sd": 0.5, "nmi": 90.0} for m, k in (("true K", 77), ("auto K", 80))]
    if with_joined:
        rows.append({"pipeline": "select clusterer, refined labels ⊕ text", "k_mode": "true K",
                     "k": 77, "acc": acc - 2, "acc_sd": 0.1, "nmi": 89.0})
    return {"name": name, "n_texts": 100, "k_true": 77, "settings": {"llm": "w"}, "rows": rows,
            "llm": {"llm_seconds": 12.3, "calls": 100}, "wall_seconds": 60.0,
            "peak_rss_mb": 900.0}


def test_table_reads_each_cell_and_marks_missing_rows(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    paths = []
    for name, acc, joined in (("banking77", 86.1, True), ("other", 70.0, False)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(_report(name, acc, joined)))
        paths.append(str(p))
    out = tmp_path / "t.md"
    assert main([*paths, "--out", str(out)]) == 0
    lines = {"|".join(ln.split(" | ")[:2]): ln for ln in out.read_text().splitlines()}
    assert "85.1 / 90.9" in lines["| best LLM-free pipeline (../shared/benchmarks.md)|true"]
    assert lines["| best LLM-free pipeline (../shared/benchmarks.md)|true"].endswith("| - |")
    texts = lines["| default clusterer, texts alone|auto"]
    assert "86.1 ± 0.5 / 90.0 (K 80)" in texts and "70.0 ± 0.5 / 90.0 (K 80)" in texts
    joined = lines["| default clusterer, refined labels ⊕ text|true"]
    assert "84.1 ± 0.1 / 89.0" in joined and joined.endswith("| - |")
    assert capsys.readouterr().out == out.read_text()


def test_reused_answers_are_timed_as_first_decoded_and_said_so() -> None:
    from scripts.bench_summary import llm_cell

    r = {"llm": {"llm_seconds": 2.0, "calls": 10, "reused_calls": 8, "reused_seconds": 40.0}}
    assert llm_cell(r) == ("42 (10; 8 answers reused, timed when first decoded, 2 decoded "
                           "now)")
    assert llm_cell({"llm": {"llm_seconds": 12.3, "calls": 100}}) == "12 (100)"


def test_labels_add_is_paired_by_seed_where_the_report_keeps_seeds() -> None:
    from scripts.bench_summary import DEFAULT, TEXTS, labels_add

    def row(name: str, accs: list[float] | None, mean: float) -> dict:
        out = {"pipeline": name, "k_mode": "true K", "acc": mean}
        if accs is not None:
            out["per_seed"] = [{"seed": s, "acc": a, "nmi": 80.0} for s, a in enumerate(accs)]
        return out

    # seeds spread by 4 points, the labels' gain steady at +1 and +3
    paired = {"rows": [row(TEXTS, [70.0, 74.0], 72.0), row(DEFAULT, [71.0, 77.0], 74.0)]}
    assert labels_add(paired) == "+2.0 ± 1.0 (paired, 2 seeds)"
    old = {"rows": [row(TEXTS, None, 72.0), row(DEFAULT, None, 71.5)]}
    assert labels_add(old) == "-0.5 (of the means)"
    assert labels_add({"rows": [row(TEXTS, None, 72.0)]}) == "-"
