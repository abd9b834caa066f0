"""Writing and selecting pseudo-labels with the LLM (stages c and d of the method).

Prompts are files under prompts/; their hash is stored with every label. The
model can only answer inside a grammar: one well-formed label, or a subset of
the candidate numbers offered.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from intentlocal import paths
from intentlocal.backends.base import Generation, Generator, Message, Request
from intentlocal.errors import ConfigError, ModelError
from intentlocal.grammars import label_grammar, parse_label, parse_selection, selection_grammar
from intentlocal.pipeline.augment import label_key


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    user: str
    body: str
    static_head: bool = True
    """The user turn's fixed text before its first placeholder ("Message:") goes with
    the static messages, so llama.cpp keeps it evaluated with the system prompt instead
    of evaluating it again in every call (backends.base.conversation joins it back)."""

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.body.encode("utf-8")).hexdigest()[:16]

    def messages(self, **values: str) -> tuple[list[Message], list[Message]]:
        system = [Message("system", self.system)]
        head = _literal_head(self.user) if self.static_head else ""
        body = self.user[len(head):].format(**values)
        if not head:
            return system, [Message("user", body)]
        return [*system, Message("user", head)], [Message("user", body)]


def _literal_head(template: str) -> str:
    """The fixed text of ``template`` before its first field, without trailing blanks
    (a blank belongs to the next word's token). "" when the template opens with a field
    or escapes braces there (kept whole: no unescaping to get wrong)."""
    import string

    first = next(iter(string.Formatter().parse(template)), None)
    if first is None or first[1] is None:
        return ""
    literal = first[0]
    if "{" in literal or "}" in literal or not template.startswith(literal):
        return ""
    return literal.rstrip()


def prompt_from_body(name: str, body: str) -> PromptTemplate:
    """A prompt from its TOML text: a shipped file's, or the one a run stored by hash
    (pipeline.reuse rebuilds an old run's questions from it)."""
    data = tomllib.loads(body)
    return PromptTemplate(name, data["system"].strip(), data["user"].strip(), body)


@lru_cache(maxsize=16)
def load_prompt(name: str, folder: Path | None = None) -> PromptTemplate:
    path = (folder or paths.prompts_dir()) / f"{name}.toml"
    try:
        return prompt_from_body(name, path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"prompt file {path} is missing") from exc
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        raise ConfigError(f"prompt file {path} needs a system and a user entry: {exc}") from exc


INITIAL_FIELDS = ("target", "neighbours")


def prompt_path(spec: str) -> Path | None:
    """The user's own prompt file ``spec`` names (absolute), or None for a shipped name."""
    if spec.endswith(".toml") or "/" in spec or "\\" in spec:
        return Path(spec).expanduser().resolve()
    return None


def initial_prompt(spec: str) -> PromptTemplate:
    """The initial-label prompt a run's ``initial_prompt`` setting names: a prompt of
    the shipped prompts/ folder by name, or the user's own TOML file by path, so that a
    conversation designer can word it for their domain without editing the package.
    Checked before the first call: a placeholder the runner does not fill would
    otherwise stop the run at its first text."""
    path = prompt_path(spec)
    if path is not None:
        prompt = load_prompt.__wrapped__(path.stem, path.parent)  # read afresh: edited
    else:
        prompt = load_prompt(spec)
    try:
        prompt.user.format(**{f: "" for f in INITIAL_FIELDS})
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"initial prompt {spec}: its user entry may only use the placeholders "
            f"{{target}} and {{neighbours}} (write {{{{ and }}}} for literal braces); "
            f"got {exc!r}") from exc
    if "{target}" not in prompt.user:
        raise ConfigError(f"initial prompt {spec}: its user entry never shows the text "
                          "({target})")
    return prompt


def clip(text: str, chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


def initial_request(
    prompt: PromptTemplate,
    target: str,
    neighbour_texts: Sequence[str],
    neighbour_chars: int,
) -> Request:
    lines = "\n".join(f"- {clip(t, neighbour_chars)}" for t in neighbour_texts) or "- (none)"
    static, msgs = prompt.messages(target=clip(target, 4 * neighbour_chars), neighbours=lines)
    return Request(static, msgs, label_grammar(), max_tokens=40)


def read_initial_label(model_id: str, gen: Generation) -> str:
    try:
        return parse_label(gen.text)
    except ValueError as exc:
        raise ModelError(f"the LLM {model_id} broke the label grammar: {exc}") from exc


def write_initial_label(
    generator: Generator,
    prompt: PromptTemplate,
    target: str,
    neighbour_texts: Sequence[str],
    neighbour_chars: int,
) -> tuple[str, Generation]:
    req = initial_request(prompt, target, neighbour_texts, neighbour_chars)
    gen = generator.generate(req.static_messages, req.messages, req.grammar, req.max_tokens)
    return read_initial_label(generator.model_id, gen), gen


def gather_candidates(
    own: Sequence[str],
    neighbours: Sequence[int],
    label_sets: Sequence[Sequence[str]],
    limit: int,
    min_count: int = 1,
) -> list[tuple[str, int]]:
    """Labels of the neighbours that the text lacks, most shared first, with a source;
    only those carried by at least ``min_count`` neighbours (Settings.min_share), or by
    all of them when there are fewer (a user's --neighbours 3 under the default 4, or an
    input smaller than m): a threshold above the count would share nothing at all.

    The source is the nearest neighbour carrying the label, so the history can
    say where each label came from. Spelling variants ("exchange_rates",
    "exchangerate") count as one label: one is offered, in its most used
    spelling, and never when the text already has a variant of it; a small
    model writes such variants all the time, and offering them would cost a
    call to learn nothing.
    """
    have = {label_key(lab) for lab in own}
    counts: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    source: dict[str, int] = {}
    order: dict[str, int] = {}
    for rank, j in enumerate(neighbours):
        for key in {label_key(lab) for lab in label_sets[j]} - have:
            counts[key] += 1
        for lab in label_sets[j]:
            key = label_key(lab)
            if key in have:
                continue
            spellings.setdefault(key, Counter())[lab] += 1
            source.setdefault(lab, int(j))
            order.setdefault(key, rank * 100 + len(order))
    need = max(1, min(min_count, len(neighbours)))
    ranked = sorted((k for k in counts if counts[k] >= need),
                    key=lambda k: (-counts[k], order[k]))
    out = []
    for key in ranked[:limit]:
        spelled = spellings[key]
        best = sorted(spelled, key=lambda lab: (-spelled[lab], lab))[0]
        out.append((best, source[best]))
    return out


def most_shared(
    candidates: Sequence[tuple[str, int]], max_select: int
) -> list[tuple[str, int]]:
    """What selector = "shared" adds to a text: the first ``max_select`` candidates of
    gather_candidates (all of them when 0). One function, so that the runner and the
    scripts that replay a run's refinement cannot drift apart on the rule."""
    return list(candidates[: max_select or None])


def shared_refinement(
    initial: Sequence[Sequence[str]],
    neighbours: Sequence[Sequence[int]],
    max_candidates: int,
    max_select: int,
    min_count: int = 1,
) -> list[list[str]]:
    """Every text's labels after one refinement by the shared rule, from its initial
    labels and its neighbours (one row of ids per text): how a script replays a finished
    run's refinement on other initial labels without the runner and its store.
    ``min_count`` is the run's Settings.min_share."""
    return [
        [*own]
        + [c for c, _ in most_shared(
            gather_candidates(own, [int(j) for j in neighbours[u]], initial, max_candidates,
                              min_count),
            max_select,
        )]
        for u, own in enumerate(initial)
    ]


def selection_request(
    prompt: PromptTemplate,
    target: str,
    own: Sequence[str],
    candidates: Sequence[str],
    neighbour_chars: int,
    max_pick: int = 0,
) -> Request:
    listing = "\n".join(f"{i}. {c}" for i, c in enumerate(candidates, 1))
    static, msgs = prompt.messages(
        target=clip(target, 4 * neighbour_chars),
        labels=", ".join(own) or "(none)",
        candidates=listing,
    )
    grammar = selection_grammar(len(candidates), max_pick)
    return Request(static, msgs, grammar, max_tokens=4 * len(candidates) + 4)


def read_selection(model_id: str, gen: Generation, n_candidates: int, max_pick: int) -> list[int]:
    """0-based indices into the candidates that the LLM chose."""
    try:
        return [i - 1 for i in parse_selection(gen.text, n_candidates, max_pick)]
    except ValueError as exc:
        raise ModelError(f"the LLM {model_id} broke the selection grammar: {exc}") from exc
