"""20 SIGKILLs at random moments across every stage of a real `intentlocal run`
process (slowed fakes as models, so it takes well under a minute), a resume
after each: nothing lost, no finished LLM call redone, same result.

The same harness runs on the real small models with
`python scripts/kill_harness.py --real`; tests/integration/test_kill_resume.py
kills a real-model run once in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.kill_harness import PLAN, REPO, run_harness

pytestmark = pytest.mark.integration


def test_twenty_random_kills_across_all_stages(tmp_path: Path) -> None:
    data = tmp_path / "in.txt"
    data.write_text((REPO / "tests" / "data" / "kill_texts.txt").read_text())
    # --final mix: the run has every stage, embed-final included (the default, final =
    # "texts", clusters the first embedding and has none); --selector llm: refinement
    # calls the LLM, so kills land in it (the default rule writes it in one transaction);
    # --join text: every embed-N re-embeds the texts (the default mix embeds the distinct
    # labels, which embed-final then finds cached: too quick for a kill to land)
    # --min-share 1: the any-neighbour rule offers candidates to nearly every text, so
    # the refinement stages hold enough LLM calls for kills to land in
    rep = run_harness(tmp_path, data, ["--k", "6", "--max-iterations", "2", "--neighbours", "5",
                                       "--min-share", "1",
                                       "--final", "mix", "--selector", "llm", "--join", "text"],
                      kills=20, seed=1)
    assert rep.kills_attempted == 20
    assert rep.kills_landed >= 18  # a kill may miss when its process finishes first
    assert set(rep.killed_in) >= set(PLAN) - {"embed-2", "refine-2"}, rep.killed_in
    assert rep.integrity_failures == 0
    assert rep.steps_lost_or_changed == 0
    assert rep.labels_lost == 0
    assert rep.calls_repeated == 0
    assert rep.calls_total > rep.calls_reference  # kills did land inside LLM calls
    assert rep.same_result
