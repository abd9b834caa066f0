"""Do cluster names read as intents? Naming rules compared on finished runs (issue 7).

A run names each cluster by its most shared label (``naming.name_clusters``). On the
5 Dec benches some names were one example of the intent rather than the intent
("call_dad" for create call, "chicken_recipe" for get recipes) and one was another
intent ("record_video" for send message). This scores naming rules by how well the name
points at the gold intent most of the cluster's texts carry, with the run's own
embedder: a name is "right" when, of all the set's gold intent names, the one nearest
to it (cosine, underscores as spaces) is the cluster's. Gold names score only; the
rules see the run's labels and nothing else. Clusters are weighted by their number of
texts (a name is read by as many texts as it stands for).

Rules (each gives unique names, larger clusters choosing first, as the product does):

* ``most shared`` - the product's until 5 Dec (``name_clusters`` without vectors): the
  label the most texts of the cluster carry;
* ``central`` - the label nearest the count-weighted mean vector of the cluster's
  labels (among those carried by at least ``--min-count`` texts, or the top one):
  a general name beside several specific ones should sit in their middle;
* ``central of the frequent`` - the product's since 5 Dec (``name_clusters`` given the
  labels' vectors): the same among the labels carried by at least half as many texts as
  the most shared one: central, but never a label few texts carry;
* ``specific`` - count x (count / the label's count in the whole run): the c-TF-IDF
  idea, a label carried mostly inside this cluster;
* ``llm`` (with ``--llm``) - the LLM (the run's, or ``--name-llm``) writes each
  cluster's name from its eight most shared labels (with counts) and its five most
  typical distinct texts (``pipeline.naming.write_names``, prompts/name_cluster.toml);
  where that name is another larger cluster's, the "central of the frequent" pick;
* ``llm checked`` - the same names, each kept only where it is nearer the
  count-weighted centre of the cluster's eight most shared labels than the "central of
  the frequent" pick (a filter measured here, not the product's);
* ``llm where weak <S>`` (``--weak S,...``) - the same names, kept only where the rule's
  pick is carried by fewer than S of the cluster's texts (measured, not the product's).

    python scripts/cluster_names.py SET=STORE:RUN [...] [--report reports/cluster_names.md]
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.stored_runs import command, parser, run_specs, write_report  # noqa: E402

RULES = ("most shared", "central", "central of the frequent", "specific")


def assignment_of(members: dict[int, list[int]]) -> list[int]:
    """Each text's cluster, from the clusters' members (the product's rules take it so)."""
    assignment = [0] * sum(len(m) for m in members.values())
    for cid, rows in members.items():
        for i in rows:
            assignment[i] = cid
    return assignment


def name_by(rule: str, members: dict[int, list[int]], text_labels: list[list[str]],
            vec: dict[str, np.ndarray], run_counts: Counter, min_count: int) -> dict[int, str]:
    """Each cluster's name under ``rule``; larger clusters choose first, names unique."""
    if rule in ("most shared", "central of the frequent"):  # the product's two rules
        from intentlocal.pipeline.naming import name_clusters

        named = name_clusters(assignment_of(members), text_labels, label_vectors=vec
                              if rule == "central of the frequent" else None)
        return {c["id"]: c["name"] for c in named}
    taken: set[str] = set()
    out: dict[int, str] = {}
    for cid in sorted(members, key=lambda c: (-len(members[c]), c)):
        counts = Counter(lab for i in members[cid] for lab in set(text_labels[i]))
        if not counts:
            out[cid] = f"cluster_{cid}"
            continue
        if rule == "specific":
            score = {lab: c * c / run_counts[lab] for lab, c in counts.items()}
        else:
            floor = min_count  # "central"
            pool = [lab for lab, c in counts.items() if c >= floor] or \
                [max(counts, key=lambda lab: (counts[lab], lab))]
            centre = sum(counts[lab] * vec[lab] for lab in pool)
            centre = centre / max(float(np.linalg.norm(centre)), 1e-12)
            score = {lab: float(vec[lab] @ centre) for lab in pool}
        ranked = sorted(score, key=lambda lab: (-score[lab], lab))
        name = next((lab for lab in ranked if lab not in taken), ranked[0] + "_2")
        taken.add(name)
        out[cid] = name
    return out


def llm_names(store: Any, settings: Any, embedder: Any, generator: Any, sr: Any,
              members: dict[int, list[int]], text_labels: list[list[str]],
              sets_u: list[list[str]], vec: dict[str, np.ndarray],
              checked: bool, prompt: Any, weak_share: float = 0.0) -> dict[int, str]:
    """The product's LLM names (``naming.write_names``) over the run's distinct texts,
    on top of the product's rule (the fallback for a name already taken or, ``checked``,
    less central than the rule's pick)."""
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.naming import name_clusters, write_names
    from intentlocal.pipeline.reuse import answers_writer

    assignment = assignment_of(members)
    clusters = name_clusters(assignment, text_labels, label_vectors=vec)
    u_assign = [0] * len(sr.uniques)
    for i, u in enumerate(sr.uid_of.tolist()):
        u_assign[u] = assignment[i]
    u_vectors = embed_cached(store, embedder, sr.uniques)
    # through the store's answers: a run made with --llm-names, or an earlier rule of
    # this script, asked these already
    writer = answers_writer(generator, store, settings)
    counts = {cid: Counter(lab for i in rows for lab in set(text_labels[i]))
              for cid, rows in members.items()}

    def central(c: dict, written: str) -> bool:
        """Nearer the count-weighted centre of the cluster's 8 most shared labels than
        the rule's pick."""
        top = counts[c["id"]].most_common(8)
        if c["name"] not in vec or not top:  # a suffixed pick ("alarm_set_2"): no rival
            return True
        if written not in vec:
            vec[written] = embed_cached(store, embedder, [written.replace("_", " ")])[0]
        unit = {lab: vec[lab] / np.linalg.norm(vec[lab]) for lab, _ in top}
        centre = sum(n * unit[lab] for lab, n in top)
        score = lambda lab: float(vec[lab] @ centre) / float(np.linalg.norm(vec[lab]))  # noqa: E731
        return score(written) > score(c["name"])

    def weak(c: dict, written: str) -> bool:
        """The rule's pick is carried by fewer than weak_share of the cluster's texts."""
        return counts[c["id"]][c["name"]] < weak_share * len(members[c["id"]])

    keep = central if checked else weak if weak_share > 0 else None
    named = write_names(writer, prompt, clusters, u_assign, sets_u, sr.uniques, u_vectors,
                        keep=keep)
    return {c["id"]: c["name"] for c in named}


def main(argv: list[str] | None = None) -> int:
    from intentlocal.api import build_backends
    from intentlocal.config import settings_from_dict
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.store import Store
    from scripts.label_distance import load_run

    ap = parser(__doc__, "cluster_names.md", seeds=None)
    ap.add_argument("--min-count", type=int, default=3)
    ap.add_argument("--show", type=int, default=10, help="largest clusters listed per set")
    ap.add_argument("--llm", action="store_true", help="also score the LLM's names")
    ap.add_argument("--name-llm", help="the LLM that writes the names (default: the run's)")
    ap.add_argument("--name-prompt", help="a naming prompt file (default: the shipped one)")
    ap.add_argument("--weak", default="",
                    help="also score 'llm where weak <S>': the LLM's name only where the "
                         "rule's pick is carried by fewer than S of the texts (e.g. 0.2,0.3)")
    a = ap.parse_args(argv)
    weak = [float(x) for x in a.weak.split(",") if x]
    rules = [*RULES, "llm", "llm checked", *(f"llm where weak <{w:g}" for w in weak)] \
        if a.llm else list(RULES)
    from intentlocal.pipeline.labels import load_prompt

    name_prompt = load_prompt("name_cluster") if not a.name_prompt else \
        load_prompt(Path(a.name_prompt).stem, Path(a.name_prompt).resolve().parent)
    report: dict[str, Any] = {"command": command(), "sets": [], "rules": rules}
    for set_name, path, run_id in run_specs(a.runs):
        sr = load_run(f"{path}:{run_id}", set_name, str(Path(a.data) / set_name / "test.jsonl"))
        store = Store(path)
        settings = settings_from_dict(store.run(run_id).settings)
        embedder, generator = build_backends(settings)
        namer = generator
        if a.name_llm:
            from intentlocal.backends.registry import load_llm

            namer = load_llm(a.name_llm, seed=settings.seed, temperature=settings.temperature,
                             n_ctx=settings.n_ctx, parallel=settings.parallel)
        iters = max(settings.max_iterations, 0)
        sets_u = store.label_sets(run_id, len(sr.uniques), iters)
        text_labels = [sets_u[u] for u in sr.uid_of.tolist()]
        assignment = store.assignments(run_id)
        members: dict[int, list[int]] = {}
        for i, c in enumerate(assignment):
            members.setdefault(int(c), []).append(i)
        gold_names = sorted({str(g) for g in sr.gold})
        labels = sorted({lab for s in text_labels for lab in s})
        lv = embed_cached(store, embedder, [lab.replace("_", " ") for lab in labels])
        gv = embed_cached(store, embedder, [g.replace("_", " ") for g in gold_names])
        vec = dict(zip(labels, lv, strict=True))
        run_counts = Counter(lab for s in text_labels for lab in set(s))
        majority = {}
        for cid, rows in members.items():
            g, n = Counter(str(sr.gold[i]) for i in rows).most_common(1)[0]
            majority[cid] = (g, n / len(rows))
        entry: dict[str, Any] = {"set": set_name, "run": f"{path}:{run_id}",
                                 "clusters": len(members), "rules": {}, "examples": []}
        names_of = {}
        for rule in rules:
            if rule.startswith("llm"):
                t0 = time.perf_counter()
                names = llm_names(store, settings, embedder, namer, sr, members, text_labels,
                                  sets_u, vec, checked=rule == "llm checked",
                                  prompt=name_prompt,
                                  weak_share=float(rule.split("<")[1]) if "<" in rule else 0.0)
                entry["name_prompt"] = f"{name_prompt.name} {name_prompt.hash}"
                entry[f"{rule} seconds"] = round(time.perf_counter() - t0, 1)
                entry["name_llm"] = namer.model_id
                new = sorted(set(names.values()) - set(vec))
                if new:
                    nv = embed_cached(store, embedder, [n.replace("_", " ") for n in new])
                    vec.update(zip(new, nv, strict=True))
            else:
                names = name_by(rule, members, text_labels, vec, run_counts, a.min_count)
            names_of[rule] = names
            right, sim, weight = 0.0, 0.0, 0
            for cid, name in names.items():
                v = vec.get(name)
                if v is None:
                    continue
                sims = gv @ v
                gold = majority[cid][0]
                size = len(members[cid])
                right += size * float(gold_names[int(np.argmax(sims))] == gold)
                sim += size * float(sims[gold_names.index(gold)])
                weight += size
            entry["rules"][rule] = {"right_pct": round(100 * right / weight, 1),
                                    "cosine_to_gold": round(sim / weight, 3)}
        for cid in sorted(members, key=lambda c: (-len(members[c]), c))[: a.show]:
            entry["examples"].append({
                "size": len(members[cid]), "gold": majority[cid][0],
                "gold_share": round(100 * majority[cid][1], 1),
                **{rule: names_of[rule][cid] for rule in rules}})
        report["sets"].append(entry)
        print(set_name, entry["rules"], file=sys.stderr, flush=True)
    write_report(report, a.report, markdown)
    print(markdown(report))
    return 0


def markdown(r: dict[str, Any]) -> str:
    rules = r.get("rules", RULES)
    lines = ["# Cluster names against the gold intents", "", f"`{r['command']}`", "",
             "Right: the gold intent name nearest the cluster's name (run's embedder, "
             "cosine) is the intent most of its texts carry; weighted by cluster size.", "",
             "| set | clusters | " + " | ".join(f"{x}: right / cosine" for x in rules) + " |",
             "|---|---|" + "---|" * len(rules)]
    for s in r["sets"]:
        cells = " | ".join(f"{s['rules'][x]['right_pct']:.1f} % / "
                           f"{s['rules'][x]['cosine_to_gold']:.3f}" for x in rules)
        lines.append(f"| {s['set']} | {s['clusters']} | {cells} |")
    for s in r["sets"]:
        lines += ["", f"## {s['set']}: the largest clusters", "",
                  "| size | gold intent (share) | " + " | ".join(rules) + " |",
                  "|---|---|" + "---|" * len(rules)]
        for e in s["examples"]:
            lines.append(f"| {e['size']} | {e['gold']} ({e['gold_share']:.0f} %) | "
                         + " | ".join(e[x] for x in rules) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
