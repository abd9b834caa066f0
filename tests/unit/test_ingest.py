from pathlib import Path

import pytest

from intentlocal.errors import InputError
from intentlocal.ingest import read_corpus


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return p


def test_csv_picks_text_column_and_keeps_lines(tmp_path: Path) -> None:
    p = _write(tmp_path, "a.csv", 'id,utterance\n1,hello there\n2,\n3,"multi\nline text"\n')
    c = read_corpus(p)
    assert c.column == "utterance"
    assert c.texts == ["hello there", "multi\nline text"]
    assert c.lines == [2, 5]


def test_csv_chosen_column_missing_names_columns(tmp_path: Path) -> None:
    p = _write(tmp_path, "a.csv", "id,body\n1,hi\n")
    with pytest.raises(InputError, match=r"no column 'text'.*id, body"):
        read_corpus(p, "text")
    with pytest.raises(InputError, match="cannot tell which column"):
        read_corpus(p)


def test_jsonl_broken_line_is_named(tmp_path: Path) -> None:
    p = _write(tmp_path, "a.jsonl", '{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(InputError, match=r"a\.jsonl, line 2: not valid JSON"):
        read_corpus(p)


def test_jsonl_missing_field(tmp_path: Path) -> None:
    p = _write(tmp_path, "a.jsonl", '{"text": "ok"}\n{"body": "x"}\n')
    with pytest.raises(InputError, match="line 2: no 'text' field"):
        read_corpus(p)


def test_txt_bom_and_blank_lines(tmp_path: Path) -> None:
    p = _write(tmp_path, "a.txt", b"\xef\xbb\xbffirst\n\n  \nsecond\n")
    c = read_corpus(p)
    assert c.texts == ["first", "second"] and c.lines == [1, 4]


@pytest.mark.parametrize("content", ["", "\n\n   \n"])
def test_empty_or_blank_file(tmp_path: Path, content: str) -> None:
    with pytest.raises(InputError, match="holds no texts"):
        read_corpus(_write(tmp_path, "e.txt", content))


def test_non_utf8_names_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "l1.txt", b"fine\nalso fine\ncaf\xe9 au lait\n")
    with pytest.raises(InputError, match=r"line 3: bytes that are not UTF-8"):
        read_corpus(p)


def test_binary_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="binary"):
        read_corpus(_write(tmp_path, "b.txt", b"\x00\x01\x02GGUF"))


def test_missing_path_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_corpus(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a directory"):
        read_corpus(tmp_path)


def test_huge_text_is_cut_and_counted(tmp_path: Path) -> None:
    c = read_corpus(_write(tmp_path, "big.txt", "x" * 1_000_000 + "\nshort\n"))
    assert len(c.texts[0]) == 2000 and c.truncated == 1


def test_repeats_are_labelled_once() -> None:
    from intentlocal.ingest import Corpus

    c = Corpus(["Hi there", "hi  there", "other"], [1, 2, 3], "x")
    uniques, uids = c.unique()
    assert uniques == ["Hi there", "other"] and uids == [0, 0, 1]
