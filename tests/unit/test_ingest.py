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


# -- transcripts: speakers, chat records, .json ------------------------------------------

CALLS = (
    "call,speaker,text\n"
    "1,agent,Thank you for calling. How can I help?\n"
    "1,customer,my card has not arrived\n"
    "1,agent,Let me check that for you.\n"
    "2,Customer,I want to close my account\n"
    "2,agent,Sorry to hear that.\n"
)


def test_csv_speaker_keeps_one_side_and_its_lines(tmp_path: Path) -> None:
    p = _write(tmp_path, "calls.csv", CALLS)
    c = read_corpus(p, speaker="customer")
    assert c.texts == ["my card has not arrived", "I want to close my account"]
    assert c.lines == [3, 5]
    assert c.selection == "speaker customer"
    assert "2 of 5" in (c.note or "")


def test_csv_without_speaker_keeps_all_and_says_who_speaks(tmp_path: Path) -> None:
    c = read_corpus(_write(tmp_path, "calls.csv", CALLS))
    assert len(c.texts) == 5 and c.selection is None
    assert "column 'speaker'" in (c.note or "") and "agent (3)" in (c.note or "")
    assert "--speaker customer" in (c.note or "")


def test_speaker_column_named_by_user(tmp_path: Path) -> None:
    p = _write(tmp_path, "c.csv", "side,text\nA,hello\nB,bye\n")
    assert read_corpus(p, speaker="side=b").texts == ["bye"]
    with pytest.raises(InputError, match=r"no column 'who' for --speaker; columns: side, text"):
        read_corpus(p, speaker="who=b")


def test_unknown_speaker_lists_the_speakers(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no turn is by client; .*agent \(3\), customer \(1\)"):
        read_corpus(_write(tmp_path, "calls.csv", CALLS), speaker="client")


def test_speaker_asked_of_a_file_without_speakers(tmp_path: Path) -> None:
    p = _write(tmp_path, "a.csv", "text\nhello\n")
    with pytest.raises(InputError, match="needs turns marked with who speaks"):
        read_corpus(p, speaker="customer")


@pytest.mark.parametrize("spec", ["=", "role=", "=customer", " , "])
def test_malformed_speaker_spec(tmp_path: Path, spec: str) -> None:
    with pytest.raises(InputError, match="expected a speaker"):
        read_corpus(_write(tmp_path, "calls.csv", CALLS), speaker=spec)


CHAT = (
    '{"id": 1, "messages": [{"role": "system", "content": "You are a bank bot."},'
    ' {"role": "user", "content": "my card is blocked"},'
    ' {"role": "assistant", "content": "I can help."},'
    ' {"role": "user", "content": [{"type": "text", "text": "and I need a new PIN"}]}]}\n'
    '{"id": 2, "messages": [{"role": "user", "content": "how do I top up"}]}\n'
)


def test_chat_records_keep_the_users_turns_by_default(tmp_path: Path) -> None:
    c = read_corpus(_write(tmp_path, "chats.jsonl", CHAT))
    assert c.texts == ["my card is blocked", "and I need a new PIN", "how do I top up"]
    assert c.lines == [1, 1, 2]
    assert c.selection == "speaker user"
    assert "kept the user turns, 3 of 5" in (c.note or "")


def test_chat_records_other_side_on_request(tmp_path: Path) -> None:
    c = read_corpus(_write(tmp_path, "chats.jsonl", CHAT), speaker="assistant,system")
    assert c.texts == ["You are a bank bot.", "I can help."]


def test_sharegpt_style_from_value(tmp_path: Path) -> None:
    rec = ('{"turns": [{"from": "human", "value": "hi, lost my phone"},'
           ' {"from": "gpt", "value": "ok"}]}')
    c = read_corpus(_write(tmp_path, "sg.json", "[" + rec + "]"))
    assert c.texts == ["hi, lost my phone"]


def test_chat_message_without_text_is_named(tmp_path: Path) -> None:
    p = _write(tmp_path, "c.jsonl", '{"messages": [{"role": "user"}]}\n')
    with pytest.raises(InputError, match=r"line 1, messages\[0\]: no message text"):
        read_corpus(p)


def test_jsonl_flat_records_with_a_role_field(tmp_path: Path) -> None:
    p = _write(tmp_path, "t.jsonl",
               '{"text": "where is my refund", "role": "customer"}\n'
               '{"text": "one moment", "role": "agent"}\n')
    assert read_corpus(p, speaker="customer").texts == ["where is my refund"]
    assert len(read_corpus(p).texts) == 2


def test_json_list_of_texts_and_records(tmp_path: Path) -> None:
    p = _write(tmp_path, "a.json", '["first text", {"text": "second"}, "  "]')
    c = read_corpus(p)
    assert c.texts == ["first text", "second"] and c.lines == [1, 2]


def test_json_object_holding_conversations(tmp_path: Path) -> None:
    data = '{"conversations": [{"messages": [{"role": "customer", "text": "cancel my order"}]}]}'
    assert read_corpus(_write(tmp_path, "a.json", data)).texts == ["cancel my order"]


def test_json_errors_say_where(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"a\.json, line 2: not valid JSON"):
        read_corpus(_write(tmp_path, "a.json", '["ok",\n oops]'))
    with pytest.raises(InputError, match=r"b\.json, record 2: no 'text' field"):
        read_corpus(_write(tmp_path, "b.json", '[{"text": "ok"}, {"body": "x"}]'))
    with pytest.raises(InputError, match=r"c\.json: expected a list .* its keys: settings"):
        read_corpus(_write(tmp_path, "c.json", '{"settings": {}}'))
    with pytest.raises(InputError, match=r"d\.json, record 1: expected an object or a string"):
        read_corpus(_write(tmp_path, "d.json", "[3]"))


TRANSCRIPT = (
    "[00:00:01] Agent: Good morning, how can I help?\n"
    "[00:00:04] Customer: I was charged twice for one order\n"
    "Agent: Let me look.\n"
    "Customer: also my card got declined\n"
    "(the line went quiet)\n"
)


def test_txt_transcript_keeps_lines_whole_and_suggests_a_side(tmp_path: Path) -> None:
    c = read_corpus(_write(tmp_path, "call.txt", TRANSCRIPT))
    assert len(c.texts) == 5 and c.texts[1].startswith("[00:00:04] Customer:")
    assert "look like a transcript" in (c.note or "") and "--speaker customer" in (c.note or "")


def test_txt_speaker_strips_prefix_and_timestamp(tmp_path: Path) -> None:
    c = read_corpus(_write(tmp_path, "call.txt", TRANSCRIPT), speaker="Customer")
    assert c.texts == ["I was charged twice for one order", "also my card got declined"]
    assert c.lines == [2, 4]
    assert "1 without a speaker left out" in (c.note or "")


def test_txt_of_queries_is_not_taken_for_a_transcript(tmp_path: Path) -> None:
    lines = ["Note: my card is blocked", "how do I reset my pin", "see http://bank.example",
             "top up failed", "what is the fee at 10:30"]
    c = read_corpus(_write(tmp_path, "q.txt", "\n".join(lines)))
    assert c.note is None and c.texts == lines


# -- first turns ------------------------------------------------------------------------

CALLS_WITH_FOLLOW_UPS = (
    "call_id,speaker,text\n"
    "7,agent,How can I help?\n"
    "7,customer,my card has not arrived\n"
    "7,customer,yes that's right\n"
    "8,customer,I want to close my account\n"
    "8,customer,thanks\n"
    ",customer,a row that belongs to no call\n"
)


def test_first_turn_of_each_call_after_the_speaker(tmp_path: Path) -> None:
    p = _write(tmp_path, "calls.csv", CALLS_WITH_FOLLOW_UPS)
    c = read_corpus(p, speaker="customer", first_turn=True)
    assert c.texts == ["my card has not arrived", "I want to close my account"]
    assert c.lines == [3, 5]
    assert c.selection == "speaker customer, first turns"
    assert "kept each conversation's first turn: 2 conversations" in (c.note or "")
    assert "1 turns without a conversation left out" in (c.note or "")
    # without --speaker the agent's greeting is call 7's first turn
    assert read_corpus(p, first_turn=True).texts[0] == "How can I help?"


def test_first_turn_column_named_by_user(tmp_path: Path) -> None:
    p = _write(tmp_path, "t.csv", "ref,text\nA,hello\nA,more\nB,bye\n")
    assert read_corpus(p, conversation="ref").texts == ["hello", "bye"]
    with pytest.raises(InputError, match=r"no column 'call' for --first-turn; columns: ref, text"):
        read_corpus(p, conversation="call")
    with pytest.raises(InputError, match="needs to know where each conversation starts"):
        read_corpus(p, first_turn=True)


def test_first_turn_of_chat_records_is_the_first_user_turn(tmp_path: Path) -> None:
    c = read_corpus(_write(tmp_path, "chats.jsonl", CHAT), first_turn=True)
    assert c.texts == ["my card is blocked", "how do I top up"]
    assert c.selection == "speaker user, first turns"


def test_first_turn_of_a_txt_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"call\.txt: --first-turn needs .* a \.txt"):
        read_corpus(_write(tmp_path, "call.txt", TRANSCRIPT), first_turn=True)


def test_a_column_of_many_values_is_not_taken_for_speakers(tmp_path: Path) -> None:
    rows = "".join(f"user{i}@example.com,question {i}\n" for i in range(30))
    c = read_corpus(_write(tmp_path, "mail.csv", "from,text\n" + rows))
    assert c.speakers is None and c.note is None and len(c.texts) == 30
