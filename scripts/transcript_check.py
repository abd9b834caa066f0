"""What keeping one side of a transcript is worth: a call-centre transcript made from a
gold-labelled JSONL, clustered with and without `--speaker customer`.

    python scripts/transcript_check.py make ../shared/data/banking77/test.jsonl OUT_DIR
        [--intents 12] [--per-intent 25] [--seed 0]
    INTENTLOCAL_HOME=H intentlocal run OUT_DIR/calls.csv --speaker customer --out A
    INTENTLOCAL_HOME=H intentlocal run OUT_DIR/calls.csv --out B
    python scripts/transcript_check.py score OUT_DIR/gold.json A/run1_clusters.json
        B/run2_clusters.json [--report reports/transcripts.md]

Why a made-up transcript: ../shared/data holds single customer turns with gold intents,
and no real call recording can leave a user's laptop. Each call here is a real customer
text between templated agent turns (a greeting naming one of eight agents, a scripted
reply, often a goodbye), as a contact-centre export has them. The customer side is
scored against its gold intents; the agent side has no intent, so what is measured for
it is how many clusters it takes for itself and how many customer texts land with it.
The gold file is read here only: the runs see the CSV's texts and speakers alone.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import Counter
from pathlib import Path

from intentlocal.bench import load_labelled
from intentlocal.pipeline.metrics import scores

AGENTS = ["Sam", "Alex", "Priya", "Jordan", "Chen", "Maria", "Tom", "Aisha"]
GREETINGS = [
    "Thank you for calling Northbank, my name is {a}. How can I help you today?",
    "Hi, you're through to {a} at Northbank. What can I do for you?",
    "Good morning, {a} speaking. How may I help?",
]
REPLIES = [
    "I'm sorry to hear that. Let me look into your account.",
    "Thanks for explaining. Can you confirm the last four digits of your card?",
    "Let me check that for you, one moment please.",
    "I understand. Could you confirm your date of birth for security?",
    "Okay, I can help with that. Please hold while I pull up your details.",
]
FOLLOW_UPS = [
    "yes",
    "yes that's right",
    "ok thanks",
    "1234",
    "sure, one second",
    "no that's all, thank you",
]
CLOSINGS = [
    "Is there anything else I can help you with today?",
    "Thank you for calling Northbank, have a great day!",
    "You're welcome, {c}. Goodbye!",
]


def make(gold_path: str, out: Path, intents: int, per_intent: int, seed: int,
         follow_ups: float = 0.0) -> None:
    """``follow_ups``: the share of calls in which the customer answers the agent's
    reply ("yes", "1234", "ok thanks"), a turn with no intent of its own."""
    texts, gold = load_labelled(gold_path, None, 0)
    by: dict[str, list[str]] = {}
    for t, g in zip(texts, gold, strict=True):
        by.setdefault(g, []).append(t)
    names = sorted(by)
    chosen = names[:: max(1, len(names) // intents)][:intents]
    rng = random.Random(seed)
    rows: list[tuple[int, str, str]] = []
    answer: dict[str, str] = {}
    call = 0
    for intent in chosen:
        for text in by[intent][:per_intent]:
            call += 1
            agent = rng.choice(AGENTS)
            rows.append((call, "agent", rng.choice(GREETINGS).format(a=agent)))
            rows.append((call, "customer", text))
            answer[text] = intent
            rows.append((call, "agent", rng.choice(REPLIES)))
            if follow_ups and rng.random() < follow_ups:
                rows.append((call, "customer", rng.choice(FOLLOW_UPS)))
            if rng.random() < 0.6:
                rows.append((call, "agent", rng.choice(CLOSINGS).format(c=rng.choice(AGENTS))))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "calls.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["call_id", "speaker", "text"])
        w.writerows(rows)
    (out / "gold.json").write_text(json.dumps(answer, indent=0))
    agent = {r[2] for r in rows if r[1] == "agent"}
    print(f"{out / 'calls.csv'}: {len(rows)} turns in {call} calls, {len(answer)} customer "
          f"texts of {len(chosen)} intents, {len(agent)} distinct agent turns")


def score(gold_path: Path, result: Path) -> dict[str, object]:
    """Customer texts scored against gold; the agent turns by where they went."""
    gold: dict[str, str] = json.loads(gold_path.read_text())
    doc = json.loads(result.read_text())
    rows = doc["texts"]
    cust = [r for r in rows if r["text"] in gold]
    follow = set(FOLLOW_UPS)
    agent_rows = [r for r in rows if r["text"] not in gold and r["text"] not in follow]
    follow_rows = [r for r in rows if r["text"] in follow]
    follow_clusters = Counter(r["cluster_id"] for r in follow_rows)
    agent_clusters = Counter(r["cluster_id"] for r in agent_rows)
    sizes = Counter(r["cluster_id"] for r in rows)
    mostly_agent = {c for c, n in agent_clusters.items() if n > sizes[c] / 2}
    s = scores([gold[r["text"]] for r in cust], [r["cluster_id"] for r in cust])
    # An intent whose texts mostly sit in a cluster of agent turns is hidden from a
    # reader of cluster names, though Hungarian matching may still credit that cluster.
    home: dict[str, Counter[int]] = {}
    for r in cust:
        home.setdefault(gold[r["text"]], Counter())[r["cluster_id"]] += 1
    hidden = sorted(g for g, c in home.items() if c.most_common(1)[0][0] in mostly_agent)
    return {
        "result": str(result),
        "texts": len(rows),
        "customer_texts": len(cust),
        "clusters": len(sizes),
        "clusters_mostly_agent": len(mostly_agent),
        "customer_texts_in_agent_clusters": sum(
            1 for r in cust if r["cluster_id"] in mostly_agent
        ),
        "intents_hidden_in_agent_clusters": hidden,
        "follow_up_turns": len(follow_rows),
        "clusters_mostly_follow_ups": sum(
            1 for c, n in follow_clusters.items() if n > sizes[c] / 2
        ),
        "k": doc["clustering"].get("k"),
        "clusterer": doc["clustering"].get("clusterer"),
        "names_of_agent_clusters": sorted(
            c["name"] for c in doc["clusters"] if c["id"] in mostly_agent
        ),
        **{k: round(v, 1) for k, v in s.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("gold")
    m.add_argument("out", type=Path)
    m.add_argument("--intents", type=int, default=12)
    m.add_argument("--per-intent", type=int, default=25)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--follow-ups", type=float, default=0.0,
                   help="share of calls where the customer also answers the agent")
    s = sub.add_parser("score")
    s.add_argument("gold", type=Path)
    s.add_argument("results", type=Path, nargs="+")
    s.add_argument("--report", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "make":
        make(args.gold, args.out, args.intents, args.per_intent, args.seed, args.follow_ups)
        return 0
    found = [score(args.gold, r) for r in args.results]
    lines = [
        "| results | texts | clusters | mostly agent turns | customer texts in them "
        "| intents hidden there | customer ACC / NMI / ARI |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in found:
        lines.append(
            f"| {f['result']} | {f['texts']} | {f['clusters']} | {f['clusters_mostly_agent']}"
            f" | {f['customer_texts_in_agent_clusters']}"
            f" | {', '.join(f['intents_hidden_in_agent_clusters']) or '-'}"
            f" | {f['acc']} / {f['nmi']} / {f['ari']} |"
        )
    table = "\n".join(lines)
    print(table)
    for f in found:
        print(f"{f['result']}: agent clusters named {f['names_of_agent_clusters']}")
    if args.report:
        args.report.with_suffix(".json").write_text(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
