"""Cluster names: the rule's pick among the labels (``name_clusters``, the default) and
the names the LLM writes (``write_names``, one grammar-constrained call per cluster).

Why the LLM at all: ``name_clusters`` picks a cluster's name among the labels its texts
carry. Where every one of those labels is one instance of the intent ("call_dad",
"call_mom", "call_sister") no pick names the intent itself; the model, shown the
cluster's labels with their counts and a few of its most typical texts, can write
the general name. One call per cluster (K calls: seconds to a couple of minutes,
against the thousands of calls of the labels). The rule's pick is kept beside the
model's name, and is the fallback when the model's name is already another
cluster's (larger clusters choose first, as in ``name_clusters``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from intentlocal.backends.base import Generator, Request, generate_all
from intentlocal.errors import ModelError
from intentlocal.grammars import name_grammar, parse_label
from intentlocal.pipeline.labels import PromptTemplate, clip
from intentlocal.pipeline.vectors import unit_rows


def typical(vectors: np.ndarray, rows: Sequence[int], n: int) -> list[int]:
    """The ``n`` rows nearest their (cosine) centre, nearest first: the texts that show
    what the cluster is about rather than its edges, which it may share with a
    neighbouring cluster."""
    x = unit_rows(vectors[list(rows)])
    centre = x.mean(axis=0)
    order = np.argsort(-(x @ centre), kind="stable")[:n]
    return [int(rows[i]) for i in order]


def name_request(
    prompt: PromptTemplate,
    label_counts: Sequence[tuple[str, int]],
    texts: Sequence[str],
    chars: int = 120,
    others: Sequence[str] = (),
) -> Request:
    labels = "\n".join(f"- {lab} ({n})" for lab, n in label_counts) or "- (none)"
    lines = "\n".join(f"- {clip(t, chars)}" for t in texts) or "- (none)"
    near = "\n".join(f"- {o}" for o in others) or "- (none)"
    static, msgs = prompt.messages(labels=labels, texts=lines, others=near)
    return Request(static, msgs, name_grammar(), max_tokens=40)


def nearest_clusters(vectors: np.ndarray, members: Mapping[int, Sequence[int]],
                     n: int) -> dict[int, list[int]]:
    """Each cluster's ``n`` nearest other clusters by the cosine of their mean vectors:
    the ones its name must be told apart from."""
    ids = sorted(members)
    if n <= 0 or len(ids) < 2:
        return {c: [] for c in ids}
    centres = unit_rows(np.stack([unit_rows(vectors[list(members[c])]).mean(axis=0)
                                  for c in ids]))
    sims = centres @ centres.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :min(n, len(ids) - 1)]
    return {c: [ids[j] for j in order[i]] for i, c in enumerate(ids)}


def tidy(name: str) -> str:
    """``name`` with each word once ("reminder_reminder_set" -> "reminder_set"): greedy
    decoding of a small model repeats words, and a repeated word never helps a name."""
    words: list[str] = []
    for w in name.split("_"):
        if w not in words:
            words.append(w)
    return "_".join(words)



def write_names(
    generator: Generator,
    prompt: PromptTemplate,
    clusters: Sequence[dict[str, Any]],
    assignment: Sequence[int],
    label_sets: Sequence[Sequence[str]],
    texts: Sequence[str],
    vectors: np.ndarray,
    n_labels: int = 8,
    n_texts: int = 5,
    n_others: int = 5,
    chunk: int = 8,
    progress: Callable[[int, int], None] | None = None,
    keep: Callable[[dict[str, Any], str], bool] | None = None,
) -> list[dict[str, Any]]:
    """``clusters`` (``name_clusters``' output) with each ``name`` the model's where it
    is free, the rule's pick kept as ``label_name``, and who wrote the name
    (``name_model``, ``name_prompt``: a name is a label too, and the history says
    where every label came from). ``assignment``, ``label_sets``, ``texts`` and
    ``vectors`` are aligned over the same items (a run passes its distinct texts).
    The calls go in chunks of ``chunk`` (decoded together where the backend can), with
    ``progress(done, total)`` after each: a run shows, and can be stopped, between them.
    ``keep(cluster, written)`` False leaves the rule's pick in place (scripts measure
    such filters; the product keeps every written name it can)."""
    members: dict[int, list[int]] = {}
    for i, c in enumerate(assignment):
        members.setdefault(int(c), []).append(i)
    order = sorted(clusters, key=lambda c: (-c["size"], c["id"]))
    # a prompt that shows the nearest clusters' names ({others}) gets them; the rule's
    # picks are the names there, so that every call sees the same names whatever order
    # the calls are decoded in
    contrast = "{others}" in prompt.user
    near = nearest_clusters(vectors, members, n_others if contrast else 0)
    rule_name = {int(c["id"]): c["name"] for c in clusters}
    requests = []
    for c in order:
        rows = members.get(int(c["id"]), [])
        counts = Counter(lab for i in rows for lab in set(label_sets[i]))
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n_labels]
        shown = [texts[i] for i in typical(vectors, rows, n_texts)] if rows else []
        others = [rule_name[o] for o in near.get(int(c["id"]), []) if o in rule_name]
        requests.append(name_request(prompt, top, shown, others=others))
    gens = []
    for start in range(0, len(requests), chunk):
        gens += generate_all(generator, requests[start:start + chunk])
        if progress is not None:
            progress(len(gens), len(requests))
    written_names = []
    for c, gen in zip(order, gens, strict=True):
        try:
            written_names.append(tidy(parse_label(gen.text)))
        except ValueError as exc:
            raise ModelError(
                f"the LLM {generator.model_id} broke the label grammar naming cluster "
                f"{c['id']}: {exc}") from exc
    accepted = [keep is None or keep(c, w) for c, w in zip(order, written_names, strict=True)]
    taken: set[str] = set()
    named: dict[int, dict[str, Any]] = {}
    for c, written, ok in zip(order, written_names, accepted, strict=True):
        picks = [written] if ok else []
        picks += [c["name"], *(lab for lab, _ in c.get("top_labels", []))]
        name = next((p for p in picks if p not in taken), None)
        if name is None:
            n = 2
            while f"{written}_{n}" in taken:
                n += 1
            name = f"{written}_{n}"
        taken.add(name)
        named[int(c["id"])] = {
            **c,
            "name": name,
            "label_name": c["name"],
            "written_name": written,
            "name_accepted": ok,
            # who wrote the name: the model only when its name is the one kept
            "name_model": generator.model_id if name == written else None,
            "name_prompt": prompt.hash if name == written else None,
        }
    return [named[int(c["id"])] for c in clusters]


def name_clusters(
    assignment: Sequence[int],
    label_sets: Sequence[Sequence[str]],
    top: int = 3,
    label_vectors: Mapping[str, np.ndarray] | None = None,
) -> list[dict]:
    """A unique name per cluster, larger clusters choosing first so that the common
    intents get the plain names.

    Without ``label_vectors``: the cluster's most shared label not already taken. With
    them (the runner passes the labels' embeddings, which refinement computed already):
    among the labels carried by at least half as many of the cluster's texts as its
    most shared one, the label nearest their count-weighted mean vector. Why: the most
    shared label is often one example of the intent ("call_dad" beside "call_mom" and
    "call_sister"), or a neighbouring intent's label that refinement spread; the
    central one among the frequent names what they have in common ("send_video" rather
    than "record_video" for send-message texts). Measured on the 5 Dec bench runs: the
    gold intent name nearest the cluster's name was the cluster's own for 68.8 / 68.7 /
    82.5 / 69.9 % of texts (banking77, clinc150, massive_intent, mtop_intent) against
    68.8 / 69.0 / 69.2 / 63.7 % for the most shared (reports/cluster_names.md).
    ``top_labels`` stay the most shared, with their counts.
    """
    members: dict[int, list[int]] = {}
    for i, c in enumerate(assignment):
        members.setdefault(int(c), []).append(i)
    taken: set[str] = set()
    out = []
    for cid in sorted(members, key=lambda c: (-len(members[c]), c)):
        counts = Counter(lab for i in members[cid] for lab in set(label_sets[i]))
        ranked = sorted(counts, key=lambda lab: (-counts[lab], lab))
        order = ranked
        if label_vectors is not None and ranked:
            order = _central_first(ranked, counts, label_vectors)
        name = next((lab for lab in order if lab not in taken), None)
        if name is None:
            base = order[0] if order else "cluster"
            n = 2
            while f"{base}_{n}" in taken:
                n += 1
            name = f"{base}_{n}"
        taken.add(name)
        out.append(
            {
                "id": cid,
                "name": name,
                "size": len(members[cid]),
                "top_labels": [[lab, counts[lab]] for lab in ranked[:top]],
            }
        )
    return out


def _central_first(ranked: list[str], counts: Counter,
                   label_vectors: Mapping[str, np.ndarray]) -> list[str]:
    """``ranked`` (most shared first) with the frequent labels (at least half the top
    count, and embedded) reordered nearest their count-weighted mean vector first; the
    rest keep their order behind them, for when the frequent names are all taken."""
    floor = counts[ranked[0]] / 2
    pool = [lab for lab in ranked if counts[lab] >= floor and lab in label_vectors]
    if len(pool) < 2:
        return ranked
    vecs = np.stack([np.asarray(label_vectors[lab], dtype=np.float64) for lab in pool])
    centre = (np.array([counts[lab] for lab in pool], dtype=np.float64)[:, None] * vecs).sum(0)
    sims = vecs @ centre / max(float(np.linalg.norm(centre)), 1e-12)
    central = [pool[i] for i in sorted(range(len(pool)), key=lambda i: (-sims[i], i))]
    frequent = set(pool)
    return central + [lab for lab in ranked if lab not in frequent]
