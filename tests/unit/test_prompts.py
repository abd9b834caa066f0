"""Prompt templates: the user turn's fixed head travels with the static messages."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from intentlocal.backends.base import Message, conversation
from intentlocal.pipeline.labels import PromptTemplate, initial_prompt, load_prompt
from tests.conftest import SHARED


@pytest.mark.parametrize("name", ["initial_label", "select_labels"])
def test_the_chat_sent_is_the_template_filled_in(name: str) -> None:
    p = load_prompt(name)
    values = {"target": "my card {has} not arrived", "neighbours": "- a", "labels": "x",
              "candidates": "1. y"}
    static, variable = p.messages(**values)
    assert [m.role for m in static] == ["system", "user"]
    assert static[-1].content == "Message:"  # the fixed head, no trailing blank
    sent = conversation(static, variable)
    assert sent == [Message("system", p.system), Message("user", p.user.format(**values))]
    # without the lever: the same chat, the head with the data
    s2, v2 = replace(p, static_head=False).messages(**values)
    assert [m.role for m in s2] == ["system"] and conversation(s2, v2) == sent


@pytest.mark.parametrize("user,head", [
    ("{target} and more", ""),  # opens with data: nothing fixed to share
    ("Ask {{x}} {target}", ""),  # escaped braces: kept whole
    ("Text:\n{target}", "Text:"),
])
def test_the_head_is_the_literal_text_before_the_first_field(user: str, head: str) -> None:
    p = PromptTemplate("t", "sys", user, body=user)
    static, variable = p.messages(target="T")
    assert (static[-1].content if len(static) == 2 else "") == head
    assert conversation(static, variable)[-1].content == user.format(target="T")


def test_messages_of_different_roles_are_not_joined() -> None:
    s, v = [Message("system", "a")], [Message("user", "b")]
    assert conversation(s, v) == [*s, *v]


PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
DATA = SHARED / "data"


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "


@pytest.mark.parametrize("path", sorted(PROMPTS.rglob("*.toml")), ids=lambda p: p.name)
def test_no_prompt_names_a_benchmark_intent(path: Path) -> None:
    """Issue 7: prompts mention no benchmark's intents. Every gold intent name of more
    than one word (one-word names such as "no" or "order" are plain English) is looked
    for in every prompt, the shipped ones and the wording variants alike."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is not beside the checkout")
    names = {json.loads(line)["label"] for f in DATA.glob("*/*.jsonl")
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip()}
    multi = {_words(n) for n in names if len(_words(n).split()) > 1}
    assert len(multi) > 100  # the four sets' names were read
    body = _words(path.read_text(encoding="utf-8"))
    assert not [n.strip() for n in multi if n in body]


@pytest.mark.parametrize("path", sorted((PROMPTS / "variants").glob("*.toml")),
                         ids=lambda p: p.name)
def test_wording_variants_fill_in_like_the_shipped_prompt(path: Path) -> None:
    p = load_prompt(path.stem, path.parent)
    static, variable = p.messages(target="t", neighbours="- a")
    assert static[0].role == "system" and "t" in variable[-1].content
    assert p.hash != load_prompt("initial_label").hash


@pytest.mark.parametrize("path", [PROMPTS / "name_cluster.toml",
                                  *sorted((PROMPTS / "variants" / "names").glob("*.toml"))],
                         ids=lambda p: p.name)
def test_naming_prompts_fill_in_with_the_naming_fields(path: Path) -> None:
    p = load_prompt(path.stem, path.parent)
    static, variable = p.messages(labels="- a_b (3)", texts="- t", others="- c_d")
    assert static[0].role == "system" and "a_b (3)" in variable[-1].content


def test_a_users_own_initial_prompt_file_writes_the_labels(tmp_path: Path) -> None:
    """``initial_prompt`` = a path: the run sends that wording, and the history keeps
    its hash (and the store its text) beside every label it wrote."""
    from intentlocal.api import IntentClusterer
    from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
    from tests.conftest import SUPPORT_TEXTS

    own = tmp_path / "banking.toml"
    own.write_text('system = "Name the customer\'s banking request."\n'
                   'user = "Message: {target}\\nSeen before:\\n{neighbours}"\n')
    seen: list[str] = []

    def answer(msgs: list[Message], grammar: object) -> str:
        seen.append(msgs[0].content)
        return "card_arrival" if grammar.name == "label" else "none"  # type: ignore[attr-defined]

    m = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(answer), k="3",
                        neighbours=3, initial_prompt=str(own)).fit(SUPPORT_TEXTS)
    ours = initial_prompt(str(own))
    assert "Name the customer's banking request." in seen
    assert ours.hash != initial_prompt("initial_label").hash
    first = m.label_history_[0][0]["added"][0]
    assert first["prompt_hash"] == ours.hash
    stored = m.store_.db.execute("SELECT body FROM prompts WHERE hash=?", (ours.hash,))
    assert stored.fetchone()[0] == own.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("user", "match"),
    [("Message: {target} {domain}", "placeholders"),
     ("Message: {}", "placeholders"),
     ("Similar: {neighbours}", "never shows the text")],
)
def test_a_bad_initial_prompt_is_refused_before_any_call(
        tmp_path: Path, user: str, match: str) -> None:
    from intentlocal.errors import ConfigError

    bad = tmp_path / "bad.toml"
    bad.write_text(f'system = "s"\nuser = "{user}"\n')
    with pytest.raises(ConfigError, match=match):
        initial_prompt(str(bad))
    with pytest.raises(ConfigError, match="is missing"):
        initial_prompt(str(tmp_path / "nowhere.toml"))
    assert initial_prompt("initial_label") == load_prompt("initial_label")


def test_a_run_keeps_its_own_prompt_by_absolute_path_and_a_bad_one_stores_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from intentlocal.api import start_run
    from intentlocal.config import Settings
    from intentlocal.errors import ConfigError
    from intentlocal.ingest import Corpus
    from intentlocal.store import Store

    (tmp_path / "mine.toml").write_text('system = "s"\nuser = "Message: {target}"\n')
    (tmp_path / "broken.toml").write_text('system = "s"\nuser = "{text}"\n')
    monkeypatch.chdir(tmp_path)
    store = Store(tmp_path / "runs.sqlite3")
    corpus = Corpus(["a", "b"], [1, 2], "t.csv")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        start_run(store, corpus, Settings(initial_prompt="./broken.toml"))
    assert store.runs() == []
    run = start_run(store, corpus, Settings(initial_prompt="mine.toml"))
    assert store.run(run).settings["initial_prompt"] == str(tmp_path / "mine.toml")
