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
