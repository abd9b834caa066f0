"""Reading the user's transcripts: .csv, .jsonl or .txt, with errors that say where.

Texts are stripped and empty ones dropped (with their line numbers kept, so
results can point back to the file); exact repeats are labelled once.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from intentlocal.errors import InputError

TEXT_COLUMNS = (
    "text",
    "utterance",
    "utterances",
    "message",
    "query",
    "sentence",
    "turn",
    "content",
    "transcript",
)
MAX_TEXT_CHARS = 2000


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    lines: list[int]  # 1-based line (or record) of each text in the source
    source: str
    column: str | None = None
    truncated: int = 0

    def unique(self) -> tuple[list[str], list[int]]:
        """Unique texts (first occurrence order) and each text's unique id."""
        index: dict[str, int] = {}
        uniques: list[str] = []
        uids: list[int] = []
        for t in self.texts:
            key = " ".join(t.split()).lower()
            if key not in index:
                index[key] = len(uniques)
                uniques.append(t)
            uids.append(index[key])
        return uniques, uids


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a .csv, .jsonl or .txt file")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise InputError(
            f"{path} looks like a binary file (it contains NUL bytes); "
            "give a UTF-8 .csv, .jsonl or .txt file"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}, line {line}: bytes that are not UTF-8 ({data[exc.start : exc.start + 4]!r})",
            hint="re-save the file as UTF-8",
        ) from exc


def read_corpus(path: str | Path, column: str | None = None) -> Corpus:
    p = Path(path).expanduser()
    text = _read_text(p)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv"):
        corpus = _read_csv(p, text, column, "\t" if suffix == ".tsv" else ",")
    elif suffix in (".jsonl", ".ndjson"):
        corpus = _read_jsonl(p, text, column or "text")
    else:
        corpus = _read_txt(p, text)
    if not corpus.texts:
        raise InputError(f"{p} holds no texts (it is empty or only blank)")
    return corpus


def _clip(texts: list[str]) -> tuple[list[str], int]:
    n = sum(1 for t in texts if len(t) > MAX_TEXT_CHARS)
    return [t[:MAX_TEXT_CHARS] for t in texts], n


def _read_txt(p: Path, text: str) -> Corpus:
    texts, lines = [], []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            texts.append(line.strip())
            lines.append(i)
    texts, n = _clip(texts)
    return Corpus(texts, lines, str(p), truncated=n)


def _read_jsonl(p: Path, text: str, field: str) -> Corpus:
    texts, lines = [], []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}, line {i}: not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict) or field not in obj:
            raise InputError(f"{p}, line {i}: no {field!r} field")
        value = obj[field]
        if not isinstance(value, str):
            raise InputError(f"{p}, line {i}: {field!r} is not a string")
        if value.strip():
            texts.append(value.strip())
            lines.append(i)
    texts, n = _clip(texts)
    return Corpus(texts, lines, str(p), column=field, truncated=n)


def pick_column(header: list[str], column: str | None, where: str) -> int:
    lowered = [h.strip().lower() for h in header]
    if column is not None:
        if column.strip().lower() in lowered:
            return lowered.index(column.strip().lower())
        raise InputError(f"{where}: no column {column!r}; columns: {', '.join(header)}")
    for name in TEXT_COLUMNS:
        if name in lowered:
            return lowered.index(name)
    if len(header) == 1:
        return 0
    raise InputError(
        f"{where}: cannot tell which column holds the text; columns: {', '.join(header)}",
        hint="choose one with --column NAME",
    )


def _read_csv(p: Path, text: str, column: str | None, delimiter: str) -> Corpus:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return Corpus([], [], str(p))
    except csv.Error as exc:
        raise InputError(f"{p}, line 1: unreadable CSV header ({exc})") from exc
    col = pick_column(header, column, str(p))
    texts, lines = [], []
    try:
        for row in reader:
            if col < len(row) and row[col].strip():
                texts.append(row[col].strip())
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise InputError(f"{p}, line {reader.line_num}: unreadable CSV ({exc})") from exc
    texts, n = _clip(texts)
    return Corpus(texts, lines, str(p), column=header[col], truncated=n)


def preview(path: str | Path, rows: int = 5) -> tuple[list[str], list[list[str]]]:
    """Header and first rows, for the TUI's import screen."""
    p = Path(path).expanduser()
    text = _read_text(p)
    if p.suffix.lower() in (".csv", ".tsv"):
        reader = csv.reader(
            io.StringIO(text, newline=""), delimiter="\t" if p.suffix.lower() == ".tsv" else ","
        )
        header = next(reader, [])
        return header, [r for _, r in zip(range(rows), reader, strict=False)]
    corpus = read_corpus(p)
    return ["text"], [[t] for t in corpus.texts[:rows]]
