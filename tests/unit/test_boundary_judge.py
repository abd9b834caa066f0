"""scripts/boundary_judge.py: a text's candidates are its own cluster and the nearest
other centroids, its margin says how sure the geometry is, and the LLM's pick is read
back through the shown order in both orders."""

from __future__ import annotations

import re

import numpy as np

from intentlocal.backends.fakes import FakeGenerator
from intentlocal.pipeline.labels import load_prompt
from scripts.boundary_judge import ask, margins


def test_margins_rank_a_text_between_two_clusters_first() -> None:
    x = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.7, 0.71, 0], [0.1, 0.99, 0],
                  [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    part = np.array([0, 0, 0, 1, 1, 2])
    margin, cands, _cen = margins(x, part, 2)
    # text 2 sits between clusters 0 and 1: the smallest margin, cluster 1 its rival
    assert int(np.argmin(margin)) == 2
    assert list(cands[2]) == [0, 1]
    assert all(cands[i][0] == part[i] for i in range(len(x)))


def test_picks_are_mapped_back_to_clusters_in_both_orders() -> None:
    # the fake answers the letter of the group whose examples mention "card"
    def responder(messages, grammar):
        assert grammar.gbnf.startswith('root ::= "A" | "B"')
        groups = re.findall(r"Group (\w)[^\n]*\n((?:- [^\n]*\n?)+)", messages[-1].content)
        return next(letter for letter, block in groups if "card" in block)

    gen = FakeGenerator(responder)
    examples = [["lost my card", "card stolen"], ["transfer failed", "transfer pending"]]
    said = ask(gen, load_prompt("assign_group"), [(0, [1, 0])], ["where is my card"],
               {0: "lost_card", 1: "transfer"}, examples, 2, 90, np.random.default_rng(0))
    assert said == {0: (0, 0)}  # cluster 0 both times, whichever letter it had
    assert len(gen.calls) == 2
    first, second = (c[0][-1].content for c in gen.calls)
    assert "named lost_card" in first and "- card stolen" in first
    assert first.index("Group A") < first.index("Group B")
    # the second question shows the groups in the reverse order
    assert ("named transfer" in first.split("Group B")[0]) != (
        "named transfer" in second.split("Group B")[0])


def test_without_names_the_groups_show_examples_only() -> None:
    gen = FakeGenerator(lambda m, g: "B")
    said = ask(gen, load_prompt("assign_group"), [(0, [0, 1])], ["a"], None,
               [["a"], ["b"]], 1, 90, np.random.default_rng(0))
    shown = gen.calls[0][0][-1].content
    assert "named" not in shown
    assert "- a" not in shown and "- b" in shown  # the asked text is no example of itself
    a, b = said[0]
    assert {a, b} == {0, 1}  # "B" in both orders names each cluster once
