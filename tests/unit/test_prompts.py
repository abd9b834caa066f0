"""Prompt templates: the user turn's fixed head travels with the static messages."""

from __future__ import annotations

from dataclasses import replace

import pytest

from intentlocal.backends.base import Message, conversation
from intentlocal.pipeline.labels import PromptTemplate, load_prompt


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
