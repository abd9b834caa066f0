"""Settings: one typed object, read from a TOML file, then INTENTLOCAL_* variables,
then command-line flags (later wins). A run stores the settings it used, so a
resumed run never silently picks up a changed file or environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from intentlocal import paths
from intentlocal.errors import ConfigError

FINAL_CHOICES = ("texts", "text", "concat", "mix")
CLUSTERER_CHOICES = ("select", "consensus", "kmeans", "spectral", "average-linkage", "umap-hdbscan")
SELECTOR_CHOICES = ("llm", "shared")
JOIN_CHOICES = ("text", "mix")


@dataclass(frozen=True)
class Settings:
    """Every knob of a run. Defaults are the best configuration measured so far (1 Dec):
    the 0.5B label writer as Q4_0, 2 neighbours in the initial prompt, one refinement
    iteration whose neighbours are found in the text vectors mixed with their labels'
    vectors and whose two most shared labels are added without an LLM call, each text's
    own vector clustered by the selection of reports/clusterers.md,
    with the labels choosing where UMAP + HDBSCAN splits groups. Each field says why."""

    llm: str = "qwen2.5-coder-0.5b:q4_0"
    """A manifest name (see `intentlocal models list`), NAME:VARIANT, or a path to any
    .gguf file. The default since 30 Nov is the 0.5B model requantised to Q4_0 on this
    machine (backends/requantize.py): llama.cpp evaluates its prompts 1.6x faster than the
    shipped Q4_K_M's on 2 cores (314 against 193 tokens/s, scripts/prompt_rate.py). Its
    labels differ in wording; on mtop_intent, the one set where the labels change the
    clusters, they moved ACC +0.7 over the geometry where Q4_K_M's moved it +1.5 (5 seeds,
    sd 1.8; reports/refinement_selector.md). `--llm qwen2.5-coder-0.5b` is the shipped file."""
    embedder: str = "embeddinggemma-300m"
    """A manifest name (NAME or NAME:VARIANT, e.g. embeddinggemma-300m:int8) or an ONNX folder."""
    k: str = "auto"
    """Number of clusters, or "auto" to estimate it."""
    auto_k_neighbours: int = 0
    """Neighbours per text in the graph whose map-equation modules estimate K (k = auto).
    Fewer: finer intents, more clusters. 0 (the default since 1 Dec): 10 up to 4,500
    texts, then one per 450 texts, at most 40 (autok.neighbours_for), because at a fixed
    10 the estimate grows with the number of texts drawn from the same intents: 77, 129
    and 255 clusters on 2,500, 5,000 and 9,999 banking77 training texts of 77 intents
    (reports/auto_k_scaling.md)."""
    neighbours: int = 10
    """m: neighbours shown to the LLM and whose labels are offered in refinement."""
    max_iterations: int = 1
    """Cap on refinement iterations (the initial labelling is iteration 0). Why 1: with
    selector = "shared" an iteration costs no LLM call, but the paper's stop rule (no
    set changes) is not reached in practice: each iteration adds about two labels to
    almost every text, and on massive_intent the pairs of texts sharing a label went
    from 79.5 % one intent (initial labels) to 68.2 % after one iteration and 33.3 %
    after six, while the default clusterer stayed at 72.0-72.4 ACC and the labels mixed
    in at 0.1 moved inside their seed spread (reports/iterations.md)."""
    max_candidates: int = 12
    """Most candidate labels offered in one refinement call (most shared first)."""
    max_select: int = 2
    """Most labels one refinement call may add (0 = any subset of the candidates)."""
    min_share: int = 4
    """Refinement offers a neighbour's label only when at least this many of the m
    neighbours carry it (spelling variants count as one; all of them when there are
    fewer). 1: any neighbour's label, as in the paper. Why 4 (since 5 Dec): with 1 every
    text takes two labels from its neighbours and the labels stop telling intents apart:
    pairs of texts sharing a label are one gold intent 68.2 % of the time on
    massive_intent, against 79.5 % for the initial labels; with 4, 80.9 % on four times
    the initial labels' pairs (reports/iterations.md), and the labels, given to the
    umap-hdbscan candidate (density_weight), moved the default clusterer by +1.6 ± 1.2
    and +7.3 ± 4.2 ACC on massive_intent and mtop_intent, -0.0 ± 0.7 and -0.4 ± 0.5 on
    banking77 and clinc150 (T = 1 there: -0.9 ± 2.1, +7.1 ± 2.1, -0.1 ± 0.5, -0.3 ± 0.5;
    paired over 5 seeds, true K; reports/min_share.md)."""
    selector: str = "shared"
    """Who decides which neighbour labels a text also gets in refinement. "shared" (the
    default since 30 Nov): the max_select candidates most shared among the neighbours
    are added without an LLM call. "llm": the model picks among the numbered candidates,
    as in the paper's step 4. Why not the LLM: it answers by position, not by content.
    In the five stored full runs (three sets, Q4_K_M and Q4_0) it picked candidate 1 in
    every one of 2,719-4,367 refinement calls and never answered "none"; asked the same
    200 banking77 calls with the candidates reversed, the 0.5B model picked the new
    first candidate 200 times of 200 and the same labels 13 times (the 1.5B model: 120
    and 38). Its picks moved no cluster: with the LLM's labels, the two most shared, the
    most shared, or the initial labels alone, the default clusterer scored within 0.7
    ACC of each other on mtop_intent, massive_intent and clinc150 (5 seeds, true K;
    reports/refinement_selector.md), and the calls were a third of banking77's LLM time."""
    join: str = "mix"
    """How refinement joins a text's labels to it before retrieving its new neighbours.
    "mix" (the default since 1 Dec): the text's own vector plus join_weight times the
    mean vector of its labels, each distinct label embedded once. "text": the string
    "text (label, label)" is embedded again, the paper's labels ⊕ text. Why "mix": the
    second pass of the embedder over every text was the largest cost outside llama.cpp
    (64 s on banking77, 44-82 s on the other sets); the mix costs 7-20 s, finds 70-83 %
    of the re-embedded string's neighbours (w = 0.25 the closest of 0.1 / 0.25 / 0.5 on
    all four sets), and the clusters came out the same to 0.1 ACC on all four sets,
    5 seeds (reports/join_ablation.md)."""
    join_weight: float = 0.25
    """Weight of the labels' mean vector against the text's for join = "mix"."""
    initial_prompt: str = "initial_label"
    """The initial-label prompt: a name in the shipped prompts/ folder, or the path of
    the user's own TOML file with a system and a user entry ({target}: the text,
    {neighbours}: its prompt_neighbours nearest texts, one per line). Every label keeps
    its prompt's hash, so the history says which wording wrote it. Alternatives measured
    on 200-text samples: reports/prompt_wording.md."""
    neighbour_chars: int = 160
    """Neighbour texts are cut to this many characters in prompts."""
    initial_neighbours: bool = True
    """Show the neighbours in the initial-label prompt (False: the ablation without)."""
    prompt_neighbours: int = 2
    """How many of the m neighbours, nearest first, the initial-label prompt shows. They
    are most of its tokens, and the initial labels all of a run's LLM time: 5 instead of 10
    made initial calls 1.65x faster (reports/speed_levers.md) and kept banking77's ACC / NMI
    (reports/bench_banking77_3080_s0_fast.md). 2 since 1 Dec: on a 2-core Sapphire Rapids
    VM a call showing 5 took 0.36-0.48 s, 1 took 0.19-0.24 s, none 0.18-0.19 s, and 5 put
    banking77 at 26 minutes. What the neighbours buy is consistency: texts of one intent
    that see each other write the same label more often (completeness of the labels
    against the gold intents 64.2-67.3 with 5, 0.8-2.2 less with 1, 1.9-2.9 less with none,
    homogeneity alike; reports/prompt_neighbours.md). The default clusterer clusters the
    texts' own vectors: banking77's clusters did not change. The labels act only where
    UMAP + HDBSCAN splits groups to reach K (mtop_intent, massive_intent), not yet
    re-measured with 2. 2 keeps part of that consistency at 0.27-0.29 s a call, banking77
    in 16.0 min there (reports/run_banking77_spr_pn2.md)."""
    final: str = "texts"
    """What the clusterer clusters. "texts": each text's own vector; the labels name the
    clusters and keep their history, but do not move texts. "text": each text embedded
    with its labels, "text (l1, l2)" (the paper's). "concat": the text's own vector beside
    which labels it carries (tf-idf over the run's labels, weighted by label_weight).
    "mix": the text's vector plus label_weight times the mean vector of its labels.
    Why "texts" (since 30 Nov): under the default clusterer the refined labels mixed in
    at 0.1 changed ACC by +0.1, -0.2, +1.4 and -6.8 on banking77, clinc150,
    massive_intent and mtop_intent (full test sets, 5 seeds, true K; reports/bench_*),
    on average -1.4 (on mtop_intent the 0.5B model writes topic-level labels, "remind",
    "weather", which likely pull finer intents together). Re-measured 4 Dec on the
    precise int8 vectors: +0.7, -0.2, -0.4 and +0.8, every one inside its seed spread
    (reports/bench_summary_4dec_precise.md). Under K-means alone the mix does help
    (+1.4, +2.1, +5.2, +1.6 on 30 Nov): with --clusterer kmeans choose --final mix."""
    label_weight: float = 0.1
    """Weight of the labels against the text for final = concat or mix."""
    density_weight: float = 0.1
    """With final = "texts" (other finals carry the labels already; there it is unused):
    the weight of each text's mean label vector mixed into the
    vectors that the umap-hdbscan candidate lays out and groups (its own, as in
    final = "mix"), while the other candidates cluster, and the selection scores every
    partition on, the texts' own vectors. 0: off (the texts alone, until 5 Dec). Why
    only there: mixed in for all candidates, the labels (min_share 4) helped where the
    selection keeps umap-hdbscan (massive_intent +1.6, mtop_intent +7.3 ACC) and cost
    0.7 on banking77, where it keeps the consensus; given to umap-hdbscan alone they
    keep both gains and cost banking77 nothing (-0.0 ± 0.7), clinc150 -0.4 ± 0.5 (both
    keep the consensus; their NMI -0.1, inside the spread). The label vectors are the
    ones refinement embedded already: it costs no embedder pass (reports/min_share.md).
    Since 5 Dec the consensus candidate is built from the candidates' partitions of the
    texts alone (cluster.consensus_inputs), so where it is kept (banking77, clinc150)
    the run gets the texts alone's clusters exactly (reports/texts_consensus.md)."""
    clusterer: str = "select"
    """What makes the K clusters. "select": K-means, K-means in the spectral embedding of
    the 15- and 25-nearest-neighbour graphs, and UMAP + HDBSCAN brought to K all run,
    and the partition with the best cosine silhouette is kept, near-ties (0.02) going to
    the highest modularity on the 10-NN graph (reports/clusterers.md: no one of them
    wins on all four benchmarks). "kmeans" is the paper's choice; "spectral" and
    "umap-hdbscan" force one candidate; "average-linkage" (a candidate until 28 Nov)
    runs agglomeration alone."""
    label_splits: bool = True
    """Let the pseudo-labels choose where the umap-hdbscan candidate splits a dense
    group to reach K: a split whose two halves the LLM labelled differently is
    preferred (cluster.density._split_labels). False: the geometry alone (the ablation)."""
    llm_names: bool = False
    """After clustering, an LLM (name_llm) writes each cluster's name from the labels
    its texts carry and a few typical texts (pipeline.naming; one call per cluster), the
    label rule's pick kept beside it. Off by default: measured on the four benchmarks
    (reports/cluster_names_llm.md) the written names point at the cluster's own intent
    more often where intents are broad (massive_intent, mtop_intent) and less often
    where they are fine-grained (banking77, clinc150), where the label most texts agree
    on is the better name. False: the rule's pick (naming.name_clusters)."""
    name_llm: str = "qwen2.5-coder-1.5b"
    """The LLM that writes the names with llm_names (a manifest name or a .gguf path);
    "" = the run's own LLM. The 1.5B, because it is K calls, not thousands, and the
    0.5B's names were worse than the label rule's on all four sets (it strings labels
    together: "meeting_reminder_reminder...")."""
    seed: int = 0
    temperature: float = 0.0
    reuse_answers: bool = True
    """At temperature 0, answer an LLM question this store has answered before (same
    model, grammar and whole prompt) from the store instead of decoding it again: a run
    on the same texts with another K, clusterer or refinement rule then costs no LLM
    minutes, and gives the labels a fresh run would (pipeline.reuse). False: every
    call decoded (e.g. to time the model, or after changing llama.cpp)."""
    n_threads: int = 0
    """llama.cpp / onnxruntime threads; 0 = all cores."""
    n_gpu_layers: int = 0
    """Layers offloaded to Metal/GPU when llama.cpp was built with it; -1 = all."""
    n_ctx: int = 2048
    """Context of one LLM call, in tokens. The longest prompt of the four benchmarks
    was 272 tokens (clinc150); texts are cut to 640 characters and neighbours to
    neighbour_chars, so 2048 leaves room for long texts in any script. Each of the
    `parallel` KV streams holds this many tokens (12 KB a token for the 0.5B model)."""
    parallel: int = 4
    """LLM calls decoded together, each in its own KV-cache stream: one decode step
    writes the next token of every call. On 2 cores this made refinement calls 1.29x
    and initial calls 1.13x faster (8 together: 1.34x / 1.13x;
    reports/speed_levers_parallel.md). Results can differ from one call at a time by
    floating-point noise (a batch's arithmetic is shaped by its members), so batches
    are cut from the input, not by timing, and a run stays deterministic."""
    kmeans_init: int = 10
    """K-means restarts (n_init)."""

    def resolved_k(self) -> int | None:
        if str(self.k).strip().lower() == "auto":
            return None
        try:
            k = int(self.k)
        except ValueError as exc:
            raise ConfigError(f"k must be a positive number or 'auto', got {self.k!r}") from exc
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        return k

    def validate(self) -> Settings:
        self.resolved_k()
        if self.auto_k_neighbours < 0:
            raise ConfigError(
                f"auto_k_neighbours must be 0 (scaled) or more, got {self.auto_k_neighbours}")
        for name in ("neighbours", "max_candidates", "neighbour_chars", "n_ctx", "kmeans_init",
                     "min_share"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.final not in FINAL_CHOICES:
            choices = ", ".join(FINAL_CHOICES)
            raise ConfigError(f"final must be one of {choices}, got {self.final!r}")
        if self.clusterer not in CLUSTERER_CHOICES:
            choices = ", ".join(CLUSTERER_CHOICES)
            raise ConfigError(f"clusterer must be one of {choices}, got {self.clusterer!r}")
        if self.selector not in SELECTOR_CHOICES:
            choices = ", ".join(SELECTOR_CHOICES)
            raise ConfigError(f"selector must be one of {choices}, got {self.selector!r}")
        if self.join not in JOIN_CHOICES:
            choices = ", ".join(JOIN_CHOICES)
            raise ConfigError(f"join must be one of {choices}, got {self.join!r}")
        if self.join_weight < 0:
            raise ConfigError(f"join_weight must be 0 or more, got {self.join_weight}")
        if self.density_weight < 0:
            raise ConfigError(f"density_weight must be 0 or more, got {self.density_weight}")
        if self.label_weight < 0:
            raise ConfigError(f"label_weight must be 0 or more, got {self.label_weight}")
        if self.prompt_neighbours < 0:
            raise ConfigError(f"prompt_neighbours must be 0 or more, got {self.prompt_neighbours}")
        if not 1 <= self.parallel <= 64:
            raise ConfigError(f"parallel must be between 1 and 64, got {self.parallel}")
        if self.max_iterations < 0:
            raise ConfigError(f"max_iterations must be 0 or more, got {self.max_iterations}")
        from intentlocal.pipeline.labels import initial_prompt

        initial_prompt(self.initial_prompt)  # a broken file: said before models load
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **_coerce_all(changes, "arguments")).validate()


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(name: str, value: Any, where: str) -> Any:
    if name not in _FIELDS:
        raise ConfigError(f"unknown setting {name!r} in {where}; known: {', '.join(_FIELDS)}")
    default = _FIELDS[name].default
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"setting {name} in {where}: {value!r} is not a {type(default).__name__}"
        ) from exc


def _coerce_all(values: dict[str, Any], where: str) -> dict[str, Any]:
    return {k: _coerce(k, v, where) for k, v in values.items() if v is not None}


def load_settings(
    file: Path | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """File, then environment, then overrides (e.g. CLI flags)."""
    values: dict[str, Any] = {}
    path = file or paths.settings_path()
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from exc
        values.update(_coerce_all(raw.get("intentlocal", raw), str(path)))
    env = os.environ if env is None else env
    for name in _FIELDS:
        var = f"INTENTLOCAL_{name.upper()}"
        if var in env:
            values[name] = _coerce(name, env[var], f"${var}")
    values.update(_coerce_all(overrides or {}, "command line"))
    return Settings(**values).validate()


# Settings added after runs were first stored, and what a run stored before them did:
# resuming such a run must keep doing that, not pick up the newer default.
_BEFORE_FIELD: dict[str, Any] = {
    "prompt_neighbours": lambda d: d.get("neighbours", 10),  # the prompt showed all m
    "clusterer": lambda d: "kmeans",
    "label_splits": lambda d: False,  # runs stored before 30 Nov split by geometry alone
    "selector": lambda d: "llm",  # the LLM picked in every run stored before 30 Nov
    "join": lambda d: "text",  # refinement re-embedded "text (labels)" before 1 Dec
    "auto_k_neighbours": lambda d: d.get("neighbours", 10),  # auto-K's graph used m
    "min_share": lambda d: 1,  # any neighbour's label was offered before 5 Dec
    "density_weight": lambda d: 0.0,  # umap-hdbscan clustered the texts alone before 5 Dec
    "llm_names": lambda d: False,  # the label rule named every cluster before 5 Dec
    "name_llm": lambda d: "",  # runs made before it named with their own LLM
}


def settings_from_dict(d: dict[str, Any]) -> Settings:
    values = {k: v for k, v in d.items() if k in _FIELDS}
    for name, before in _BEFORE_FIELD.items():
        if name not in values:
            values[name] = before(d)
    return Settings(**_coerce_all(values, "stored run"))
