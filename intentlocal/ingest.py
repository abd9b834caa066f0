"""Reading the user's transcripts: .csv, .tsv, .jsonl, .json or .txt, with errors that say where.

Texts are stripped and empty ones dropped (with their line numbers kept, so each
result row can point back to the file); exact repeats are labelled once. Which side of
a transcript to keep is intentlocal.turns' business; this module finds the turns.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path

from intentlocal.errors import InputError
from intentlocal.turns import (
    CHAT_LISTS,
    TURN_TEXTS,
    Selection,
    Turn,
    conversation_field,
    find_field,
    looks_like_transcript,
    names_sides,
    select_turns,
    speaker_field,
    split_prefix,
    suggest_speaker,
    tally,
)

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
OTHER_FORMATS = {
    ".xlsx": "an Excel workbook",
    ".xls": "an Excel workbook",
    ".ods": "a spreadsheet",
    ".numbers": "a Numbers spreadsheet",
    ".parquet": "a Parquet file",
    ".docx": "a Word document",
    ".pdf": "a PDF",
}
CONTAINERS = ("conversations", "dialogues", "data", "records", "items")


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    lines: list[int]  # 1-based line (or record) of each text in the source
    source: str
    column: str | None = None
    truncated: int = 0
    note: str | None = None  # what the reader chose for the user (speakers), to show them
    selection: str | None = None  # the part of the file kept ("speaker customer"), if any
    speakers: list[str | None] | None = None  # who spoke each text; None: the file never says

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
        raise InputError(f"{path} is a directory; give a .csv, .jsonl, .json or .txt file")
    kind = OTHER_FORMATS.get(path.suffix.lower())
    if kind is not None:
        raise InputError(
            f"{path} is {kind}, which intentlocal does not read",
            hint="save or export it as CSV (UTF-8), with the texts in one column",
        )
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise InputError(
            f"{path} looks like a binary file (it contains NUL bytes); "
            "give a UTF-8 .csv, .jsonl, .json or .txt file"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}, line {line}: bytes that are not UTF-8 ({data[exc.start : exc.start + 4]!r})",
            hint="re-save the file as UTF-8",
        ) from exc


def read_corpus(
    path: str | Path,
    column: str | None = None,
    speaker: str | None = None,
    first_turn: bool = False,
    conversation: str | None = None,
) -> Corpus:
    """The texts of a file. ``speaker`` keeps the turns of one side of a transcript
    (``customer``, ``customer,caller`` or ``role=customer``); ``first_turn`` keeps each
    conversation's first turn, ``conversation`` naming the column that says which
    conversation a row belongs to when it is not a usual name (see intentlocal.turns)."""
    p = Path(path).expanduser()
    sel = Selection.parse(speaker, first_turn, conversation)
    text = _read_text(p)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv"):
        corpus = _read_csv(p, text, column, "\t" if suffix == ".tsv" else ",", sel)
    elif suffix in (".jsonl", ".ndjson"):
        corpus = _read_jsonl(p, text, column, sel)
    elif suffix == ".json":
        corpus = _read_json(p, text, column, sel)
    else:
        corpus = _read_txt(p, text, sel)
    if not corpus.texts:
        raise InputError(f"{p} holds no texts (it is empty or only blank)")
    return corpus


def _clip(texts: list[str]) -> tuple[list[str], int]:
    n = sum(1 for t in texts if len(t) > MAX_TEXT_CHARS)
    return [t[:MAX_TEXT_CHARS] for t in texts], n


def _corpus(
    p: Path,
    turns: list[Turn],
    sel: Selection,
    source: str,
    column: str | None = None,
    chat: bool = False,
) -> Corpus:
    turns = [t for t in turns if t.text.strip()]
    kept, note, selection = select_turns(turns, sel, str(p), source, chat=chat)
    texts, n = _clip([t.text.strip() for t in kept])
    speakers = [t.speaker for t in kept]
    sides = {t.speaker for t in turns if t.speaker is not None}
    if not sides or (sel.speaker is None and not names_sides(len(sides))):
        speakers = None
    return Corpus(texts, [t.line for t in kept], str(p), column=column, truncated=n,
                  note=note, selection=selection, speakers=speakers)


def _read_txt(p: Path, text: str, sel: Selection) -> Corpus:
    numbered = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    if sel.first_turn:
        raise InputError(
            f"{p}: --first-turn needs to know where each conversation starts, and a .txt"
            " file does not say",
            hint="a CSV with a conversation column (call_id, conversation_id, ...) or chat"
            " records in JSONL",
        )
    if sel.speaker is not None:
        if sel.speaker.field is not None:
            raise InputError(
                f"{p}: a .txt file has no columns; give --speaker NAME for its 'NAME: text' lines"
            )
        turns = [Turn(t, name, i) for i, line in numbered for name, t in [split_prefix(line)]]
        return _corpus(p, turns, sel, "the lines' 'Name:' prefixes")
    corpus = _corpus(p, [Turn(line, None, i) for i, line in numbered], sel, "")
    names = looks_like_transcript([line for _, line in numbered])
    if names is None:
        return corpus
    note = (
        f"the lines look like a transcript ({tally(names)}); each line is clustered whole,"
        f" its speaker included (--speaker "
        f"{suggest_speaker(names)} keeps that side's lines, without the prefix)"
    )
    return dataclasses.replace(corpus, note=note)


def _record_turns(
    obj: object, where: str, line: int, field: str | None, sel: Selection
) -> tuple[list[Turn], bool]:
    """The turns of one JSON record, and whether it was a chat (a list of messages)."""
    if isinstance(obj, str):
        return [Turn(obj, None, line)], False
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected an object or a string, got {type(obj).__name__}")
    keys = list(obj)
    text_key = field if field is not None else next((k for k in keys if k.lower() == "text"), None)
    if text_key is None or text_key not in obj:
        chat_key = next((k for k in keys if k.lower() in CHAT_LISTS
                         and isinstance(obj[k], list)), None)
        if chat_key is None:
            raise InputError(
                f"{where}: no {field or 'text'!r} field"
                + ("" if field else f" (nor a list of messages: {', '.join(CHAT_LISTS)})")
            )
        return [dataclasses.replace(_message_turn(m, f"{where}, {chat_key}[{j}]", line),
                                    conversation=f"#{line}")
                for j, m in enumerate(obj[chat_key])], True
    value = obj[text_key]
    if not isinstance(value, str):
        raise InputError(f"{where}: {text_key!r} is not a string")
    who = speaker_field(keys, sel.speaker, text_key, where)
    speaker = obj.get(who) if who is not None else None
    conv = conversation_field(keys, sel, where)
    conversation = obj.get(conv) if conv is not None else None
    return [Turn(value, str(speaker) if speaker is not None else None, line,
                 str(conversation) if conversation not in (None, "") else None)], False


def _message_turn(msg: object, where: str, line: int) -> Turn:
    if isinstance(msg, str):
        return Turn(msg, None, line)
    if not isinstance(msg, dict):
        raise InputError(f"{where}: expected a message object, got {type(msg).__name__}")
    text_key = find_field(list(msg), None, TURN_TEXTS, "", where)
    if text_key is None:
        raise InputError(f"{where}: no message text ({', '.join(TURN_TEXTS)})")
    content = msg[text_key]
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        content = " ".join(
            str(part.get("text", "")) for part in content
            if isinstance(part, dict) and part.get("type", "text") == "text"
        )
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise InputError(f"{where}: {text_key!r} is not a string")
    who = speaker_field(list(msg), None, text_key, where)
    speaker = msg.get(who) if who is not None else None
    return Turn(content, str(speaker) if speaker is not None else None, line)


def _source(chat: bool) -> str:
    return "the messages' roles" if chat else "the records' speaker field"


def _read_jsonl(p: Path, text: str, field: str | None, sel: Selection) -> Corpus:
    turns: list[Turn] = []
    chats = 0
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}, line {i}: not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise InputError(f"{p}, line {i}: expected an object with a {field or 'text'!r} field")
        got, chat = _record_turns(obj, f"{p}, line {i}", i, field, sel)
        turns += got
        chats += chat
    return _corpus(p, turns, sel, _source(bool(chats)), field or "text",
                   chat=bool(chats))


def _read_json(p: Path, text: str, field: str | None, sel: Selection) -> Corpus:
    """A whole-file JSON: a list of texts or records, one conversation (an object with a
    list of messages), or an object holding such a list (conversations, data, ...)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}, line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    if isinstance(data, dict):
        lists = [k for k in data if k.lower() in CONTAINERS and isinstance(data[k], list)]
        chat = [k for k in data if k.lower() in CHAT_LISTS and isinstance(data[k], list)]
        if chat:
            data = [data]
        elif lists:
            data = data[lists[0]]
        else:
            raise InputError(
                f"{p}: expected a list of texts or records, or an object with a list of "
                f"messages ({', '.join(CHAT_LISTS)}) or of records ({', '.join(CONTAINERS)});"
                f" its keys: {', '.join(list(data)[:10])}"
            )
    if not isinstance(data, list):
        raise InputError(f"{p}: expected a list of texts or records, got {type(data).__name__}")
    turns: list[Turn] = []
    chats = 0
    for i, obj in enumerate(data, 1):
        got, chat = _record_turns(obj, f"{p}, record {i}", i, field, sel)
        turns += got
        chats += chat
    return _corpus(p, turns, sel, _source(bool(chats)), field or "text",
                   chat=bool(chats))


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


def _read_csv(
    p: Path, text: str, column: str | None, delimiter: str, sel: Selection
) -> Corpus:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return Corpus([], [], str(p))
    except csv.Error as exc:
        raise InputError(f"{p}, line 1: unreadable CSV header ({exc})") from exc
    col = pick_column(header, column, str(p))
    who = speaker_field(header, sel.speaker, header[col], str(p))
    spk = header.index(who) if who is not None else None
    conv = conversation_field(header, sel, str(p))
    cid = header.index(conv) if conv is not None else None
    turns: list[Turn] = []
    try:
        for row in reader:
            if col < len(row) and row[col].strip():
                speaker = row[spk].strip() if spk is not None and spk < len(row) else ""
                call = row[cid].strip() if cid is not None and cid < len(row) else ""
                turns.append(Turn(row[col], speaker or None, reader.line_num, call or None))
    except csv.Error as exc:
        raise InputError(f"{p}, line {reader.line_num}: unreadable CSV ({exc})") from exc
    return _corpus(p, turns, sel, f"column {who!r}", column=header[col])


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
