"""embed_cached: each distinct text embedded once per embedder, resumable."""

from __future__ import annotations

import numpy as np
import pytest

from intentlocal.backends.fakes import FakeEmbedder
from intentlocal.pipeline.embedding import embed_cached
from intentlocal.store import Store


class CountingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen.extend(texts)
        return super().embed(texts)


def test_order_duplicates_and_cache(tmp_path) -> None:
    store, emb = Store(tmp_path / "s.sqlite3"), CountingEmbedder()
    texts = ["a card", "a pin", "a card", "top up"]
    v = embed_cached(store, emb, texts, batch=2)
    assert v.shape[0] == 4 and np.allclose(v[0], v[2])
    assert sorted(emb.seen) == ["a card", "a pin", "top up"]  # the repeat embedded once
    again = embed_cached(store, emb, ["top up", "new text", "a pin"])
    assert emb.seen[3:] == ["new text"]
    assert np.allclose(again[0], v[3]) and np.allclose(again[2], v[1])


def test_interrupted_embedding_keeps_finished_batches(tmp_path) -> None:
    store, emb = Store(tmp_path / "s.sqlite3"), CountingEmbedder()
    texts = [f"text {i}" for i in range(10)]

    def stop_at_six(done: int, total: int) -> None:
        if done >= 6 and done < total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_cached(store, emb, texts, batch=3, on_batch=stop_at_six)
    assert len(emb.seen) == 6
    full = embed_cached(store, emb, texts, batch=3)
    assert emb.seen[6:] == texts[6:]  # only what was left
    assert np.allclose(full, FakeEmbedder().embed(texts))


def test_vectors_made_under_another_arithmetic_are_not_reused(tmp_path) -> None:
    """Same model_id, different vectors_id (e.g. the int8 precision option turned on
    after a store was filled): the old vectors must be embedded again, not returned."""
    store = Store(tmp_path / "s.sqlite3")
    old, new = CountingEmbedder(), CountingEmbedder()
    new.vectors_id = f"{new.model_id}+x64q"
    embed_cached(store, old, ["a card", "a pin"])
    embed_cached(store, new, ["a card", "a pin"])
    assert new.seen == ["a card", "a pin"]
    embed_cached(store, new, ["a pin"])
    assert new.seen == ["a card", "a pin"]  # its own vectors are cached as usual


def test_own_onnx_folders_of_the_same_name_never_share_cached_vectors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two exports into folders called onnx are two models: the cache key carries the
    ONNX file's fingerprint; a manifest model (bytes checked at fetch) keeps its name."""
    from intentlocal.backends.base import vectors_id
    from intentlocal.backends.onnx_embedder import OnnxEmbedder
    from intentlocal.backends.registry import load_embedder

    keys = []
    for parent, weights in (("a", b"first"), ("b", b"second")):
        folder = tmp_path / parent / "onnx"
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(weights * 100)
        (folder / "tokenizer.json").write_text("{}")
        emb = load_embedder(str(folder))
        assert emb.model_id == "onnx" and emb.own_files
        keys.append(vectors_id(emb))
    assert keys[0] != keys[1] and all(k.startswith("onnx@") for k in keys)
    named = OnnxEmbedder(tmp_path / "a" / "onnx", model_id="embeddinggemma-300m",
                         own_files=False)
    assert vectors_id(named) == "embeddinggemma-300m+x64q"


def test_int8_is_the_default_wherever_it_met_the_cosine_bar(tmp_path, exported_folder) -> None:  # type: ignore[no-untyped-def]
    """An export that recorded fp32 because one timing on a busy machine had int8 no
    faster still runs int8 (the 5 Dec Sapphire Rapids export did exactly that); one
    whose int8 missed the bar, or that measured nothing, keeps its recorded pick."""
    from intentlocal.backends.onnx_embedder import OnnxEmbedder

    emb = OnnxEmbedder(exported_folder(tmp_path / "a", "fp32", 0.9979), model_id="e",
                       own_files=False)
    assert emb.variant == "int8" and emb.onnx_path.name == "model_int8.onnx"
    for sub, cosine in (("b", 0.95), ("c", None)):
        emb = OnnxEmbedder(exported_folder(tmp_path / sub, "fp32", cosine), model_id="e",
                           own_files=False)
        assert emb.variant == "fp32" and emb.onnx_path.name == "model.onnx"
    named = OnnxEmbedder(exported_folder(tmp_path / "d", "int8", 0.9979), variant="fp32",
                         model_id="e:fp32", own_files=False)
    assert named.variant == "fp32" and named.onnx_path.name == "model.onnx"


def test_a_models_variants_never_share_cached_vectors(tmp_path, exported_folder) -> None:  # type: ignore[no-untyped-def]
    """Until 6 Dec a model's fp32 and int8 vectors were cached under one key, so a store
    filled on one machine served the other variant's vectors on another."""
    from intentlocal.backends.base import vectors_id
    from intentlocal.backends.onnx_embedder import OnnxEmbedder
    from intentlocal.backends.registry import load_embedder

    folder = exported_folder(tmp_path / "embeddinggemma-300m", "int8", 0.9979)
    default = OnnxEmbedder(folder, model_id="embeddinggemma-300m", own_files=False)
    fp32 = OnnxEmbedder(folder, variant="fp32", model_id="embeddinggemma-300m:fp32",
                        own_files=False)
    assert vectors_id(default) == "embeddinggemma-300m:int8+x64q"
    assert vectors_id(fp32) == "embeddinggemma-300m:fp32+x64q"
    assert load_embedder(str(folder)).variant == "int8"  # a user's own folder: same rule
