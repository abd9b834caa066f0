"""scripts/stored_runs.py: run specs keep colons in the store path, a malformed spec
stops with a message that shows the expected form, and a report is written twice."""

from __future__ import annotations

import json

import pytest

from scripts.stored_runs import run_spec, write_report


def test_the_run_id_is_after_the_last_colon() -> None:
    assert run_spec("banking77=/a:b/runs.sqlite3:12") == ("banking77", "/a:b/runs.sqlite3", 12)


@pytest.mark.parametrize("spec", ["banking77", "banking77=/runs.sqlite3", "=/r:1", "b=/r:x"])
def test_a_malformed_spec_names_the_expected_form(spec: str) -> None:
    with pytest.raises(SystemExit, match="SET=STORE:RUN"):
        run_spec(spec)


def test_the_report_is_written_as_json_and_markdown(tmp_path) -> None:
    write_report({"command": "python x", "n": 1}, tmp_path / "r.md",
                 lambda r: f"Command: `{r['command']}`\n")
    assert json.loads((tmp_path / "r.json").read_text())["n"] == 1
    assert (tmp_path / "r.md").read_text() == "Command: `python x`\n"


def test_select_over_seeds_scores_every_row_with_each_seeds_choice() -> None:
    """Each seed gets its own clusterer's partition of the distinct texts, expanded to
    the rows (a repeated text scores twice) and scored, with the candidate it kept."""
    import numpy as np

    from scripts.stored_runs import select_over_seeds

    class Fake:
        def __init__(self, seed: int) -> None:
            self.seed, self.chosen_ = seed, f"cand-{seed}"

        def fit_predict(self, x, k, labels=None, layout=None):
            assert labels == [["a"], ["b"], ["c"]] and layout is None
            # seed 0 right, seed 1 puts the third text with the first
            return np.array([0, 1, 1]) if self.seed == 0 else np.array([0, 1, 0])

    gold = ["p", "q", "q", "q"]  # rows; the last row repeats distinct text 2
    per, chosen = select_over_seeds(Fake, np.zeros((3, 2)), 2, [0, 1], gold,
                                    np.array([0, 1, 2, 2]), labels=[["a"], ["b"], ["c"]])
    assert chosen == ["cand-0", "cand-1"]
    assert per[0]["acc"] == 100.0 and per[1]["acc"] == 50.0


def test_set_and_run_gives_open_shared_runs_form_and_checks_the_spec() -> None:
    from scripts.stored_runs import set_and_run

    assert set_and_run("banking77=/a:b/runs.sqlite3:12") == ("banking77", "/a:b/runs.sqlite3:12")
    with pytest.raises(SystemExit, match="SET=STORE:RUN"):
        set_and_run("/runs.sqlite3:1")  # the set's name forgotten
