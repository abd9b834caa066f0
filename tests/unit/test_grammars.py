import pytest

from intentlocal.grammars import (
    LABEL_RE,
    label_grammar,
    normalise_label,
    parse_label,
    parse_selection,
    selection_grammar,
)


@pytest.mark.parametrize("ok", ["card_arrival", "a", "top_up_failed_again_and_again"])
def test_label_accepts_well_formed(ok: str) -> None:
    assert parse_label(ok) == ok


@pytest.mark.parametrize(
    "bad", ["", "Card_arrival", "card arrival", "card__arrival", "_card", "a_b_c_d_e_f_g",
            "card-arrival", "1card", "label: card"])
def test_label_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_label(bad)


def test_label_grammar_bounds_words() -> None:
    g = label_grammar()
    assert "{0,5}" in g.gbnf and g.grammar_id.startswith("label:")
    assert LABEL_RE.fullmatch("_".join(["w"] * 6))
    assert not LABEL_RE.fullmatch("_".join(["w"] * 7))


def test_selection_grammar_only_offers_given_indices() -> None:
    g = selection_grammar(3)
    assert '"none"' in g.gbnf
    assert '"4"' not in g.gbnf and '"3"' in g.gbnf
    assert selection_grammar(3) is g  # cached
    assert selection_grammar(4).grammar_id != g.grammar_id


def test_parse_selection() -> None:
    assert parse_selection("none", 3) == []
    assert parse_selection("1,3", 3) == [1, 3]
    for bad in ("4", "3,1", "1,1", "0", "one", "1,"):
        with pytest.raises(ValueError):
            parse_selection(bad, 3)


def test_normalise_label_repairs_free_text() -> None:
    assert normalise_label("Label: Card Arrival!") == "label_card_arrival"
    assert normalise_label("!!!") is None


def test_selection_grammar_can_bound_the_subset_size() -> None:
    g = selection_grammar(5, 2)
    assert g.name == "select5max2"
    assert selection_grammar(5, 0).name == "select5" == selection_grammar(5, 9).name[:7]
    # with at most 2 picks, a rule that allows a third index must not exist
    assert "a5-1" in g.gbnf and "-3" not in g.gbnf
    assert parse_selection("1,4", 5, 2) == [1, 4]
    with pytest.raises(ValueError, match="more than 2"):
        parse_selection("1,2,3", 5, 2)


def test_rule_names_are_checked() -> None:
    from intentlocal.backends.base import Grammar

    with pytest.raises(ValueError, match="invalid GBNF rule name 'a1_2'"):
        Grammar("bad", 'root ::= a1_2\na1_2 ::= "1"\n')


@pytest.mark.parametrize("n,pick", [(1, 0), (3, 0), (12, 0), (12, 3), (30, 2)])
def test_grammars_parse_in_llama_cpp(n: int, pick: int) -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    llama_grammar.LlamaGrammar.from_string(selection_grammar(n, pick).gbnf, verbose=False)
    llama_grammar.LlamaGrammar.from_string(label_grammar().gbnf, verbose=False)
