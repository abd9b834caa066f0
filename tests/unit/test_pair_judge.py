"""scripts/pair_judge.py: a pair counts as "same" only when the LLM says so in both
orders, merges join exactly the pairs judged the same, and each cluster is shown by its
most typical texts."""

from __future__ import annotations

import numpy as np

from intentlocal.backends.fakes import FakeGenerator
from intentlocal.pipeline.labels import load_prompt
from scripts.pair_judge import judge, typical, union


def test_union_joins_exactly_the_given_pairs_transitively() -> None:
    got = union(5, [(0, 1), (1, 3)])
    assert got[0] == got[1] == got[3]
    assert len({got[0], got[2], got[4]}) == 3
    assert got.max() + 1 == 3


def test_typical_texts_are_those_nearest_the_centroid() -> None:
    x = np.array([[1, 0], [0.8, 0.6], [0.6, 0.8], [0, 1]], dtype=np.float32)
    part = np.array([0, 0, 0, 1])
    got = typical(x, part, ["a", "b", "c", "d"], 2)
    # centroid (0.8, 0.47): b (0.92) and c (0.85) lie nearer it than a (0.80)
    assert got == [["b", "c"], ["d"]]


def test_same_needs_both_orders_and_the_prompt_shows_names_and_texts() -> None:
    # the fake says "same" only when Group A is named "x": the pair (0, 1) with names
    # x, y is "same" in one order only (all() rejects it, any() accepts it)
    def responder(messages, grammar):
        assert grammar.gbnf == 'root ::= "same" | "different"\n'
        return "same" if "Group A, named x" in messages[-1].content else "different"

    gen = FakeGenerator(responder)
    said = judge(gen, load_prompt("merge_clusters"), [(0, 1)], {0: "x", 1: "y"},
                 [["first text"], ["second text"]], 100)
    # asked as (0, 1) Group A is x: "same"; asked as (1, 0) it is y: "different"
    assert said == {(0, 1): (True, False)}
    assert len(gen.calls) == 2
    shown = gen.calls[0][0][-1].content
    assert "- first text" in shown and "- second text" in shown and "named y" in shown


def test_names_with_the_same_words_in_another_order_match() -> None:
    from scripts.pair_judge import jaccard, name_words

    a = {"top_labels": [["account_delete", 9], ["close_account", 4]]}
    b = {"top_labels": [["delete_account", 7], ["cancel", 2]]}
    assert jaccard(name_words(a, 1), name_words(b, 1)) == 1.0
    # with the top 3 labels: {account, delete, close} against {delete, account, cancel}
    assert jaccard(name_words(a, 3), name_words(b, 3)) == 0.5


def test_merge_scores_counts_the_merges_that_join_one_intent() -> None:
    from scripts.pair_judge import merge_scores

    part = np.array([0, 0, 1, 1, 2, 2])
    gold = ["a", "a", "a", "a", "b", "b"]
    got = merge_scores(part, gold, ["a", "a", "b"], [(0, 1)])
    assert got["k"] == 2 and got["merged"] == 1 and got["true"] == 1 and got["acc"] == 100.0
    wrong = merge_scores(part, gold, ["a", "a", "b"], [(1, 2)])
    assert wrong["true"] == 0 and wrong["acc"] < 100.0
