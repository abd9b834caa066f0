"""The bad-input corpus (tests/data/bad/): each file either gets a clear error that
names it (and the line where that helps) or a sensible result. Driven through the
CLI, as a user meets them, over fake backends."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from intentlocal import api, cli
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from intentlocal.store import Store

BAD = Path(__file__).resolve().parent.parent / "data" / "bad"


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "build_backends", lambda s: (FakeEmbedder(), FakeGenerator()))


ERRORS = [
    ("empty.txt", [], "holds no texts"),
    ("blank_lines.txt", [], "holds no texts"),
    ("binary.txt", [], "looks like a binary file"),
    ("latin1.csv", [], "line 2: bytes that are not UTF-8"),
    ("no_text_column.csv", [], "cannot tell which column holds the text"),
    ("no_text_column.csv", ["--column", "text"], "no column 'text'; columns: id, body"),
    ("broken_line.jsonl", [], "line 2: not valid JSON"),
    ("missing_field.jsonl", [], "line 2: no 'text' field"),
    ("does_not_exist.csv", [], "no such file"),
    ("spreadsheet.xlsx", [], "is an Excel workbook, which intentlocal does not read"),
    ("not_a_list.json", [], "expected a list of texts or records"),
    ("chat_bad_content.jsonl", [], "line 1, messages[1]: 'content' is not a string"),
    ("speakers.csv", ["--speaker", "caller"], "no turn is by caller"),
    ("speakers.csv", ["--speaker", "role=customer"], "no column 'role' for --speaker"),
    ("one_text.txt", ["--speaker", "customer"], "needs turns marked with who speaks"),
    ("speakers.csv", ["--first-turn"], "needs to know where each conversation starts"),
    ("first_turns.csv", ["--first-turn", "ticket"], "no column 'ticket' for --first-turn"),
    (".", [], "is a directory"),
]


@pytest.mark.parametrize(("name", "extra", "message"), ERRORS)
def test_clear_error_naming_the_file(name: str, extra: list[str], message: str,
                                     capsys) -> None:
    path = BAD / name
    code = cli.main(["run", str(path), "--k", "2", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert str(path.resolve() if name == "." else path) in err or path.name in err
    assert "Traceback" not in err
    assert Store().runs() == []  # nothing half-made left behind


SENSIBLE = [
    ("bom.csv", ["--k", "2"], 2, 2),
    ("quoted_newlines.csv", ["--k", "2"], 3, 2),
    ("one_text.txt", ["--k", "5"], 1, 1),
    ("two_texts.txt", ["--k", "5"], 2, 2),
    ("identical.txt", ["--k", "3"], 20, 1),
    ("unclosed_quote.csv", ["--column", "a"], 1, 1),
    ("speakers.csv", ["--speaker", "customer", "--k", "2"], 2, 2),
    ("first_turns.csv", ["--speaker", "customer", "--first-turn", "--k", "2"], 2, 2),
    ("first_turns.csv", ["--first-turn", "call_id", "--speaker", "customer", "--k", "2"], 2, 2),
]


@pytest.mark.parametrize(("name", "extra", "n_texts", "max_clusters"), SENSIBLE)
def test_sensible_result(name: str, extra: list[str], n_texts: int, max_clusters: int,
                         tmp_path: Path) -> None:
    assert cli.main(["run", str(BAD / name), *extra, "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "run1_clusters.json").read_text())
    assert len(doc["texts"]) == n_texts
    assert 1 <= len(doc["clusters"]) <= max_clusters
    assert not doc["texts"][0]["text"].startswith("\ufeff")


def test_one_megabyte_text_is_cut_not_fatal(tmp_path: Path, capsys) -> None:
    big = tmp_path / "big.txt"
    big.write_text("card " * 200_000 + "\nreset my pin\n")
    assert cli.main(["run", str(big), "--k", "2", "--out", str(tmp_path)]) == 0
    assert "1 texts longer than 2000 characters were cut" in capsys.readouterr().err


def test_corrupt_gguf_is_refused_before_the_run_exists(tmp_path: Path) -> None:
    from intentlocal.backends.llm import LlamaCppGenerator
    from intentlocal.errors import ModelError

    with pytest.raises(ModelError, match=r"corrupt\.gguf is not a GGUF file"):
        LlamaCppGenerator(BAD / "corrupt.gguf")


def test_full_disk_while_writing_results_loses_nothing(tmp_path: Path, monkeypatch,
                                                       capsys) -> None:
    import intentlocal.results as results

    real_fsync = results.os.fsync

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results.os, "fsync", full)
    out = tmp_path / "out"
    code = cli.main(["run", str(BAD / "quoted_newlines.csv"), "--k", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err
    assert "intentlocal export" in err
    assert list(out.iterdir()) == []  # no half-written file
    run = Store().runs()[0]
    assert run.status == "finished"  # the clusters are safe in the store
    monkeypatch.setattr(results.os, "fsync", real_fsync)  # space freed
    assert cli.main(["export", str(run.id), "--out", str(out)]) == 0
    assert (out / f"run{run.id}_clusters.csv").is_file()
