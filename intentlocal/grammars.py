"""The GBNF grammars that constrain every LLM output, and their Python parsers.

A small model given free rein writes prose, quotes, or numbers it was never
offered. With these grammars llama.cpp can only emit a well-formed label, or a
subset of the candidate numbers actually offered; the parsers here re-check the
text anyway, so a backend without grammar support cannot smuggle junk in.
"""

from __future__ import annotations

import re
from functools import lru_cache

from intentlocal.backends.base import Grammar

MAX_LABEL_WORDS = 6
MAX_WORD_CHARS = 20

LABEL_RE = re.compile(
    rf"[a-z][a-z0-9]{{0,{MAX_WORD_CHARS - 1}}}(?:_[a-z][a-z0-9]{{0,{MAX_WORD_CHARS - 1}}})"
    rf"{{0,{MAX_LABEL_WORDS - 1}}}"
)


@lru_cache(maxsize=1)
def label_grammar() -> Grammar:
    """1-6 lowercase words joined by underscores, nothing else."""
    gbnf = (
        f'root ::= word ("_" word){{0,{MAX_LABEL_WORDS - 1}}}\n'
        f"word ::= [a-z] [a-z0-9]{{0,{MAX_WORD_CHARS - 1}}}\n"
    )
    return Grammar("label", gbnf)


@lru_cache(maxsize=4)
def name_grammar(max_words: int = 4) -> Grammar:
    """A cluster name: a label of at most ``max_words`` words. Why shorter than a
    label: asked to cover several labels, the 0.5B model strings them together
    ("meeting_reminder_reminder_reminder_reminder") until the word limit stops it."""
    gbnf = (
        f'root ::= word ("_" word){{0,{max_words - 1}}}\n'
        f"word ::= [a-z] [a-z0-9]{{0,{MAX_WORD_CHARS - 1}}}\n"
    )
    return Grammar(f"name{max_words}", gbnf)


@lru_cache(maxsize=256)
def selection_grammar(n: int, max_pick: int = 0) -> Grammar:
    """"none", or a strictly ascending comma-separated subset of 1..n.

    Ascending order makes every subset have exactly one spelling, so the
    model cannot repeat an index and cannot name one that was not offered.
    ``max_pick`` > 0 bounds the subset's size (small models over-select).
    """
    if n < 1:
        raise ValueError("a selection needs at least one candidate")
    r_max = n if max_pick <= 0 else min(max_pick, n)
    # a{i}-{r}: index i is picked and at most r - 1 more may follow.
    # (GBNF rule names allow letters, digits and dashes only: no underscores.)
    lines = ['root ::= "none" | ' + " | ".join(f"a{i}-{r_max}" for i in range(1, n + 1))]
    for r in range(1, r_max + 1):
        for i in range(1, n + 1):
            rest = " | ".join(f"a{j}-{r - 1}" for j in range(i + 1, n + 1)) if r > 1 else ""
            lines.append(f'a{i}-{r} ::= "{i}"' + (f' ("," ({rest}))?' if rest else ""))
    name = f"select{n}" if r_max == n else f"select{n}max{r_max}"
    return Grammar(name, "\n".join(lines) + "\n")


def parse_label(text: str) -> str:
    label = text.strip()
    if not LABEL_RE.fullmatch(label):
        raise ValueError(f"not a well-formed label: {text!r}")
    return label


def parse_selection(text: str, n: int, max_pick: int = 0) -> list[int]:
    """1-based indices chosen; raises on anything the grammar would not allow."""
    t = text.strip()
    if t == "none":
        return []
    try:
        picked = [int(x) for x in t.split(",")]
    except ValueError as exc:
        raise ValueError(f"not a selection: {text!r}") from exc
    if any(p < 1 or p > n for p in picked) or picked != sorted(set(picked)):
        raise ValueError(f"selection {text!r} is not an ascending subset of 1..{n}")
    if max_pick > 0 and len(picked) > max_pick:
        raise ValueError(f"selection {text!r} picks more than {max_pick}")
    return picked


def normalise_label(text: str) -> str | None:
    """Best-effort repair for free text (backends without grammars); None if hopeless."""
    words = re.findall(r"[a-z][a-z0-9]*", text.lower())[:MAX_LABEL_WORDS]
    words = [w[:MAX_WORD_CHARS] for w in words]
    return "_".join(words) if words else None
