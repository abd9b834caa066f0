"""Who said what: the speakers of a transcript, and keeping one side of it.

Support chats and call transcripts hold two sides, and only one of them carries the
intents an analyst is after (the customer's); the agent's greetings and scripted replies
would otherwise take clusters of their own, and can hide a customer intent among them
(reports/transcripts.md: 5 of 15 clusters, one intent hidden). So the reader learns who
speaks each turn where the file says so (a CSV column or JSONL field such as ``speaker``
or ``role``, a chat record's ``messages``, "Customer: ..." lines of a .txt) and keeps the
sides the user names with ``--speaker``. Without ``--speaker`` nothing is dropped, except
in chat records (``{"messages": [{"role": ..., "content": ...}]}``), whose system prompts
and assistant replies are never what a user means to cluster: there the user's turns are
kept, and the note says so and how to choose otherwise. ``--first-turn`` then keeps each
conversation's first turn (why they called), where a conversation id column or chat
records say where conversations start.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from intentlocal.errors import InputError

SPEAKER_FIELDS = (
    "speaker",
    "role",
    "author",
    "sender",
    "from",
    "participant",
    "party",
    "speaker_role",
    "who",
)
USER_ROLES = ("user", "customer", "human", "caller", "client", "visitor", "guest")
CONVERSATION_FIELDS = (
    "conversation_id",
    "call_id",
    "session_id",
    "chat_id",
    "dialog_id",
    "dialogue_id",
    "thread_id",
    "ticket_id",
    "case_id",
    "conversation",
    "call",
    "session",
)
CHAT_LISTS = ("messages", "turns", "conversation", "dialogue", "dialog")
TURN_TEXTS = ("content", "text", "utterance", "message", "value", "turn")
MAX_SPEAKERS_NOTED = 20  # more distinct values than this: not a speaker column

# "Customer: text", optionally after a timestamp such as "[00:01:02]" or "00:01".
_PREFIX = re.compile(
    r"^\s*(?:\[[^\]]{1,20}\]\s*|\(?\d{1,2}:\d{2}(?::\d{2})?\)?\s+)?"
    r"(?P<name>[^\W\d_][\w .'-]{0,29}?)\s*:(?!//)\s*(?P<text>\S.*)$"
)


@dataclass(frozen=True)
class Turn:
    text: str
    speaker: str | None
    line: int  # 1-based line (or record) in the source
    conversation: str | None = None  # which call / chat it belongs to, where known


@dataclass(frozen=True)
class SpeakerChoice:
    """What ``--speaker`` asked for: values (any of, case-insensitive), and the column or
    field that holds them when the user named it (``role=customer``)."""

    values: frozenset[str]
    field: str | None = None
    spec: str = ""

    @classmethod
    def parse(cls, spec: str | None) -> SpeakerChoice | None:
        if spec is None or not spec.strip():
            return None
        field, sep, rest = spec.partition("=")
        if not sep:
            field, rest = "", spec
        values = frozenset(v.strip().lower() for v in rest.split(",") if v.strip())
        if not values or (sep and not field.strip()):
            raise InputError(
                f"--speaker {spec!r}: expected a speaker (customer), several (customer,caller)"
                " or a column and speakers (role=customer)"
            )
        return cls(values, field.strip() or None, spec.strip())

    def describe(self) -> str:
        return ", ".join(sorted(self.values))


@dataclass(frozen=True)
class Selection:
    """Which turns of a file to cluster: a speaker's (``--speaker``), and of those only
    each conversation's first (``--first-turn``, ``conversation`` naming the column
    when the user did)."""

    speaker: SpeakerChoice | None = None
    first_turn: bool = False
    conversation: str | None = None

    @classmethod
    def parse(cls, speaker: str | None = None, first_turn: bool = False,
              conversation: str | None = None) -> Selection:
        return cls(SpeakerChoice.parse(speaker), first_turn or conversation is not None,
                   conversation.strip() if conversation and conversation.strip() else None)


def find_field(keys: list[str], named: str | None, known: tuple[str, ...], flag: str,
               where: str, skip: str | None = None) -> str | None:
    """The column / field the user ``named`` for ``flag`` (an error listing the columns
    when there is none), else the first of the ``known`` names present, other than
    ``skip`` (the text's own column), matched without case."""
    lowered = {k.strip().lower(): k for k in keys}
    if named is not None:
        key = lowered.get(named.strip().lower())
        if key is None:
            raise InputError(f"{where}: no column {named!r} for {flag}; columns: {', '.join(keys)}")
        return key
    return next((lowered[n] for n in known if n in lowered and lowered[n] != skip), None)


def conversation_field(keys: list[str], sel: Selection, where: str) -> str | None:
    """The column / field that says which conversation a turn belongs to."""
    return find_field(keys, sel.conversation, CONVERSATION_FIELDS, "--first-turn", where)


def split_prefix(line: str) -> tuple[str | None, str]:
    """("Customer", "I lost my card") from "Customer: I lost my card"; (None, line) when
    the line has no speaker prefix."""
    m = _PREFIX.match(line)
    if m is None:
        return None, line.strip()
    return m.group("name").strip(), m.group("text").strip()


def looks_like_transcript(lines: list[str]) -> Counter[str] | None:
    """The speakers' tally when most lines start "Name:" with a few recurring names (so
    that a stray "Note: ..." in a list of queries is not taken for a transcript)."""
    names = Counter(n for n, _ in map(split_prefix, lines) if n is not None)
    prefixed = sum(names.values())
    recurring = {n: c for n, c in names.items() if c >= 2}
    if (
        not lines
        or prefixed < 0.5 * len(lines)
        or not 1 <= len(recurring) <= 10
        or sum(recurring.values()) < 0.9 * prefixed
    ):
        return None
    return Counter(recurring)


def speaker_field(keys: list[str], choice: SpeakerChoice | None, text_key: str | None,
                  where: str) -> str | None:
    """The column / field that names the speaker: the user's, else the first known name."""
    named = choice.field if choice is not None else None
    return find_field(keys, named, SPEAKER_FIELDS, "--speaker", where, skip=text_key)


def names_sides(values: int) -> bool:
    """Whether a column holding this many distinct speakers names the sides of the
    conversations (a few) rather than something else (e-mail addresses under "from")."""
    return 0 < values <= MAX_SPEAKERS_NOTED


def tally(counts: Counter[str]) -> str:
    return ", ".join(f"{name} ({n:,})" for name, n in counts.most_common(8)) + (
        f" and {len(counts) - 8} more" if len(counts) > 8 else ""
    )


def suggest_speaker(counts: Counter[str]) -> str:
    for name, _ in counts.most_common():
        if name.lower() in USER_ROLES:
            return name.lower()
    return counts.most_common(1)[0][0].lower()


def select_turns(
    turns: list[Turn],
    sel: Selection,
    where: str,
    source: str,
    *,
    chat: bool = False,
) -> tuple[list[Turn], str | None, str | None]:
    """The turns to cluster, a note for the user (or None) and the selection to name the
    run by (or None when every turn is kept).

    ``source`` says where the speakers came from ("column 'role'", "'Name:' prefixes"),
    for the messages; ``chat`` marks chat records, whose user turns are the default.
    """
    kept, note, selection = _by_speaker(turns, sel.speaker, where, source, chat)
    if not sel.first_turn:
        return kept, note, selection
    firsts, first_note = _first_turns(kept, where)
    return (
        firsts,
        "; ".join(n for n in (note, first_note) if n),
        ", ".join(n for n in (selection, "first turns") if n),
    )


def _by_speaker(
    turns: list[Turn], choice: SpeakerChoice | None, where: str, source: str, chat: bool
) -> tuple[list[Turn], str | None, str | None]:
    counts = Counter(t.speaker for t in turns if t.speaker is not None)
    if choice is not None:
        if not counts:
            raise InputError(
                f"{where}: --speaker {choice.spec} needs turns marked with who speaks, and"
                " none is",
                hint="a CSV column or JSONL field named speaker / role (or --speaker"
                " COLUMN=NAME), chat records with 'messages', or .txt lines 'Name: text'",
            )
        kept = [t for t in turns if t.speaker is not None and t.speaker.lower() in choice.values]
        if not kept:
            raise InputError(
                f"{where}: no turn is by {choice.describe()}; the speakers in {source} are "
                f"{tally(counts)}"
            )
        unmarked = sum(1 for t in turns if t.speaker is None)
        note = (
            f"kept the turns of {choice.describe()}: {len(kept):,} of {len(turns):,}"
            + (f" ({unmarked:,} without a speaker left out)" if unmarked else "")
        )
        return kept, note, f"speaker {choice.describe()}"
    if not names_sides(len(counts)):
        return turns, None, None
    if chat:
        users = {name for name in counts if name.lower() in USER_ROLES}
        if users:
            kept = [t for t in turns if t.speaker in users]
            side = ", ".join(sorted(users))
            return kept, (
                f"chat records: kept the {side} turns, {len(kept):,} of {len(turns):,} "
                f"({tally(counts)}); --speaker NAME keeps others"
            ), f"speaker {side.lower()}"
    return turns, (
        f"{source} names the speakers: {tally(counts)}; all their turns are clustered "
        f"(--speaker {suggest_speaker(counts)} keeps one side)"
    ), None


def _first_turns(turns: list[Turn], where: str) -> tuple[list[Turn], str]:
    """Each conversation's first turn, in file order: why the customer called, without
    the "yes", "thanks" and follow-ups of the rest of the call."""
    if all(t.conversation is None for t in turns):
        raise InputError(
            f"{where}: --first-turn needs to know where each conversation starts, and"
            " nothing says",
            hint=f"a column or field naming the conversation ({', '.join(CONVERSATION_FIELDS[:4])},"
            " ...; or --first-turn COLUMN), or chat records with 'messages'",
        )
    seen: set[str] = set()
    firsts = []
    for t in turns:
        if t.conversation is not None and t.conversation not in seen:
            seen.add(t.conversation)
            firsts.append(t)
    unmarked = sum(1 for t in turns if t.conversation is None)
    return firsts, (
        f"kept each conversation's first turn: {len(firsts):,} conversations"
        + (f" ({unmarked:,} turns without a conversation left out)" if unmarked else "")
    )
