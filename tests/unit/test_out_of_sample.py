"""scripts/out_of_sample.py: another split of a set is found where ../shared/data keeps
it, BERTopic's path keeps the groups HDBSCAN finds, and the report says what the labels
add only on the rows that have labels."""

from __future__ import annotations

import numpy as np

from scripts.label_distance import DATA, set_file
from scripts.out_of_sample import bertopic_path, markdown


def test_a_set_name_with_a_slash_names_its_split() -> None:
    assert set_file("banking77") == DATA / "banking77" / "test.jsonl"
    assert set_file("banking77/train") == DATA / "banking77" / "train.jsonl"


def test_bertopic_path_keeps_its_own_groups() -> None:
    # Six separated blobs of 30 texts: HDBSCAN's six groups come back as found, not
    # merged or split to any K.
    rng = np.random.default_rng(0)
    x = np.concatenate([c + 0.03 * rng.standard_normal((30, 16)) for c in np.eye(6, 16)])
    part, found = bertopic_path(x.astype(np.float32), 15)
    assert found == 6 and len(set(part.tolist())) == 6
    for b in range(6):
        assert len(set(part[30 * b:30 * (b + 1)].tolist())) == 1


def test_markdown_gives_the_gain_only_where_labels_were_used() -> None:
    row = {"acc": 70.0, "acc_sd": 1.0, "nmi": 80.0, "ari": 60.0, "seconds": 5}
    report = {"command": "python scripts/out_of_sample.py x", "seeds": [0, 1], "sets": [{
        "set": "banking77/train", "run": "s:1", "n_rows": 3, "n_distinct": 3, "k_true": 2,
        "k_auto": 2, "density_weight": 0.1, "rows": [
            {**row, "row": "select clusterer, texts alone", "k": 2, "chosen": ["kmeans"]},
            {**row, "row": "select clusterer, default (labels)", "k": 2, "acc": 72.5,
             "chosen": ["umap-hdbscan", "kmeans"], "labels_add_acc": 2.5,
             "labels_add_acc_sd": 0.5}]}]}
    lines = markdown(report).splitlines()
    texts = next(ln for ln in lines if ln.startswith("| select clusterer, texts"))
    labelled = next(ln for ln in lines if ln.startswith("| select clusterer, default"))
    assert "| 70.0 ± 1.0 | 80.0 | 60.0 |  | kmeans |" in texts
    assert "| 72.5 ± 1.0 | 80.0 | 60.0 | +2.5 ± 0.5 | kmeans, umap-hdbscan |" in labelled
