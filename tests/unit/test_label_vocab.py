"""scripts/label_vocab.py: the writing order, the offered vocabulary, the decision score."""

from __future__ import annotations

import numpy as np
import pytest

from scripts.label_vocab import decision_scores, density_order, offered


def test_densest_texts_are_asked_first_and_ties_keep_input_order() -> None:
    # texts 0-2 a tight group, 3 and 4 loose ones; 5 a copy of 4 (a tie with it)
    x = np.array([[1, 0], [0.99, 0.14], [0.98, 0.2], [0, 1], [0.6, 0.8], [0.6, 0.8]],
                 dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    near = np.array([[1, 2], [0, 2], [1, 0], [4, 5], [5, 2], [4, 2]])
    # mean cosine to the neighbours: 1 (0.994) > 2 (0.989) > 0 (0.985) > 4 = 5 (0.874)
    # > 3 (0.8); 4 and 5 tie, and the earlier text goes first
    assert density_order(x, near) == [1, 2, 0, 4, 5, 3]


def test_offered_labels_are_the_labelled_neighbours_most_carried_first() -> None:
    given = {3: "check_balance", 5: "check_balances", 7: "card_lost", 9: "top_up"}
    near = [7, 3, 5, 9, 1]  # 1 has no label yet
    # check_balance: two carriers (spellings merged, the nearest's spelling kept)
    assert offered(near, given, limit=5, min_carriers=1) == ["check_balance", "card_lost",
                                                             "top_up"]
    assert offered(near, given, limit=2, min_carriers=1) == ["check_balance", "card_lost"]
    assert offered(near, given, limit=5, min_carriers=2) == ["check_balance"]
    assert offered([1, 2], given, limit=5, min_carriers=1) == []


def test_decisions_are_scored_against_the_carriers_gold_intent() -> None:
    gold = np.array(["a", "a", "b", "b", "a"])
    near = np.array([[1, 2], [0, 2], [3, 0], [2, 0], [0, 2]])
    rows = [
        {"uid": 0, "offered": ["x", "y"]},  # neighbour 1 (gold a) carries x: x is right
        {"uid": 2, "offered": ["x"]},       # only neighbour 0 (gold a) carries x: none fit
        {"uid": 4, "offered": ["y", "x"]},  # x right (0 is a), y wrong (2 is b)
    ]
    known = [{1: "x", 2: "y"}, {0: "x"}, {0: "x", 2: "y"}]
    sc = decision_scores(rows, ["x", "x", "y"], near, known, gold)
    assert sc["copied"] == pytest.approx(1.0)
    assert sc["copies_right"] == pytest.approx(1 / 3)
    assert sc["none_fit"] == 1 and sc["none_fit_rejected"] == 0.0
    sc = decision_scores(rows, ["x", "new_label", "x"], near, known, gold)
    assert sc["copied"] == pytest.approx(2 / 3) and sc["copies_right"] == 1.0
    assert sc["none_fit_rejected"] == 1.0


def test_the_written_pass_and_the_replay_ask_one_question() -> None:
    from types import SimpleNamespace

    from scripts.label_vocab import SYSTEM, ask

    seen = []

    class Writer:
        def generate(self, static, messages, grammar, max_tokens):  # type: ignore[no-untyped-def]
            seen.append((static, messages, grammar.name, max_tokens))
            return SimpleNamespace(text="check_balance")

    sr = SimpleNamespace(uniques=["what is my balance " * 20, "balance please", "hi"])
    s = SimpleNamespace(neighbour_chars=12)
    near_p = np.array([[1, 2], [0, 2], [0, 1]])
    assert ask(Writer(), sr, s, 0, near_p, ["check_balance", "top_up"]) == "check_balance"
    (static, messages, grammar, max_tokens), = seen
    assert [m.content for m in static] == [SYSTEM] and grammar == "label" and max_tokens == 40
    assert messages[0].content == (
        "Message: " + ("what is my balance " * 20)[:47].rstrip() + "…\n\n"
        "Similar messages:\n- balance ple…\n- hi\n\n"
        "Labels of similar messages:\n- check_balance\n- top_up")
