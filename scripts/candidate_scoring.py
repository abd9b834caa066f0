"""Can the label writer judge one candidate label at a time, where a list fails?

The refinement LLM, offered a numbered list of the neighbours' labels, answered by
position (scripts/selection_audit.py). Asked about one candidate at a time, "does
this label name what the writer wants? yes / no", position cannot decide. This
script asks that for every candidate of a sample of a finished run's refinement
steps and scores each candidate by the model's log-odds of "yes" over "no" at its
first answer token (one forward pass per candidate, no generation). It then asks
whether that score knows more than the rule the product uses, the number of
neighbours sharing the label:

* AUC of each score for telling "right" candidates from the others, where right
  means the gold intent most common among the texts whose initial label it is
  equals the text's gold intent (gold labels score, nothing else);
* how many of the two candidates each score ranks highest are right (what
  max_select = 2 would add), against the rule's two most shared.

    python scripts/candidate_scoring.py STORE RUN DATA.jsonl [--llm REF] [--sample 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SYSTEM = (
    "You check intent labels for short messages a customer wrote. An intent label names "
    "what the writer wants, in a few words. Answer yes or no."
)
QUESTION = (
    "Message: {text}\nLabel: {label}\n"
    "Does this label name what the writer of the message wants? Answer yes or no."
)


def auc(pos: list[float], neg: list[float]) -> float:
    """P(a right candidate scores above a wrong one), ties counting half."""
    if not pos or not neg:
        return float("nan")
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


class YesNoScorer:
    """Log-odds of "yes" over "no" as the first answer token, several prompts per
    llama.cpp decode, the system prompt's KV cells shared by every sequence."""

    def __init__(self, path: Path, parallel: int = 4) -> None:
        from intentlocal.backends.llm import LlamaCppGenerator

        self.gen = LlamaCppGenerator(path, n_ctx=1024, parallel=parallel)
        self.gen._load()
        self.parallel = parallel
        llm = self.gen._llm

        def first(word: str) -> int:
            return llm.tokenize(word.encode(), add_bos=False, special=False)[0]

        self.yes = sorted({first(w) for w in ("yes", "Yes")})
        self.no = sorted({first(w) for w in ("no", "No")})

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        import llama_cpp

        from intentlocal.backends.base import Message

        gen, llm = self.gen, self.gen._llm
        static = [Message("system", SYSTEM)]
        prefix = gen._tokens(static, static=True)
        llm.reset()
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        llm.eval(prefix)
        mem = llama_cpp.llama_get_memory(llm._ctx.ctx)
        for seq in range(1, self.parallel):
            llama_cpp.llama_memory_seq_cp(mem, 0, seq, -1, -1)
        start = len(prefix)
        out: list[float] = []
        for lo in range(0, len(pairs), self.parallel):
            chunk = pairs[lo : lo + self.parallel]
            items = []
            for seq, (text, label) in enumerate(chunk):
                msgs = [Message("user", QUESTION.format(text=text, label=label))]
                full = gen._tokens([*static, *msgs])
                if full[:start] != prefix:
                    raise SystemExit("the chat template does not keep the system prefix")
                llama_cpp.llama_memory_seq_rm(mem, seq, start, -1)
                sfx = full[start:]
                items += [(seq, start + k, t, k == len(sfx) - 1) for k, t in enumerate(sfx)]
            logits = gen._decode(items)
            for seq in range(len(chunk)):
                lg = logits[seq].astype(np.float64)
                out.append(float(np.logaddexp.reduce(lg[self.yes])
                                 - np.logaddexp.reduce(lg[self.no])))
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("run", type=int)
    ap.add_argument("data")
    ap.add_argument("--llm", default="qwen2.5-coder-0.5b:q4_0")
    ap.add_argument("--sample", type=int, default=200)
    a = ap.parse_args()

    from intentlocal.backends.registry import resolve_llm_path
    from scripts.selection_audit import load, majority_right, sample_steps

    # every step that offered candidates: the default rule's steps made no call
    steps, gold, texts, initial = load(a.store, a.run, a.data, called_only=False)
    right = majority_right(initial, gold)
    sample = sample_steps(steps, a.sample)
    scorer = YesNoScorer(resolve_llm_path(a.llm)[0])
    pairs = [(texts[s["uid"]], c.replace("_", " ")) for s in sample for c in s["cands"]]
    t = time.perf_counter()
    flat = scorer.score(pairs)
    took = time.perf_counter() - t

    llm_pos, llm_neg, share_pos, share_neg = [], [], [], []
    top2 = {"rule (two most shared)": 0, "LLM yes/no (two highest)": 0}
    said_yes = said_yes_right = 0
    i = 0
    for s in sample:
        n = len(s["cands"])
        sc = flat[i : i + n]
        i += n
        ok = [right(c, s["uid"]) for c in s["cands"]]
        for rank, (v, good) in enumerate(zip(sc, ok, strict=True)):
            # the rule's score: offered order is most shared first
            (llm_pos if good else llm_neg).append(v)
            (share_pos if good else share_neg).append(-rank)
            if v > 0:
                said_yes += 1
                said_yes_right += good
        top2["rule (two most shared)"] += sum(ok[:2])
        best = sorted(range(n), key=lambda j: (-sc[j], j))[:2]
        top2["LLM yes/no (two highest)"] += sum(ok[j] for j in best)
    n_c = len(pairs)
    n_right = len(llm_pos)
    print(f"{a.store} run {a.run}, {a.llm}: {len(sample)} refinement steps with >= 3 "
          f"candidates, {n_c} candidates ({n_right} right), {took:.0f} s "
          f"({took / n_c:.2f} s a candidate)")
    print("| score | AUC right vs wrong |\n|---|---|")
    print(f"| neighbours sharing it (the rule's rank) | {auc(share_pos, share_neg):.3f} |")
    print(f"| LLM log-odds yes / no | {auc(llm_pos, llm_neg):.3f} |")
    print(f"\nright among the two each picks (of {2 * len(sample)}):")
    for k, v in top2.items():
        print(f"- {k}: {v}")
    print(f"- answered yes (log-odds > 0): {said_yes}/{n_c}, of which right {said_yes_right}")
    print(f"- right among all candidates: {n_right}/{n_c}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
