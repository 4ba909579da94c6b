"""The Ray engine computes what the local engine computes: a local 2-CPU Ray and a simulated two-node cluster.

Each test starts its own Ray (``num_cpus=2``; actors take fractional CPUs) and shuts it down after. Workers
import this checkout (``local_runtime_env``), not whatever ``clusterer`` an environment has installed.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from clusterer import api, synth
from clusterer.errors import InputError

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

CFG = {"model": "hashing", "cache_dir": "none", "quiet": True, "device": "cpu"}


@pytest.fixture(scope="module")
def day20k() -> pl.DataFrame:
    """A 20k-prompt day: three campaigns on their own account pools, benign traffic, an organisation column."""
    traffic, _ = synth.fake_day(
        seed=5, n_benign=15_000, campaign_sizes=(2_000, 1_800, 1_200), accounts_per_campaign=80, n_benign_accounts=4_000
    )
    org = pl.when(pl.col("account_id").str.starts_with("user")).then(pl.col("account_id")).otherwise(pl.lit(None))
    return traffic.with_columns(org.alias("org_id"))


@pytest.fixture(scope="module")
def local_result(day20k):
    return api.cluster(day20k, **CFG)


@pytest.fixture()
def local_ray():
    from clusterer.run.ray_engine import local_runtime_env

    # address "local": a new Ray of its own, never one left running on the machine (ray.init would join that)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=local_runtime_env())
    yield
    ray.shutdown()


def _same(a, b) -> None:
    """Two results are the same run: equal tables (run_id included: the engine is not part of it), vectors."""
    for name in ("assignments", "clusters", "accounts", "operators"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.equals(y), f"{name} differ"
    assert np.array_equal(a.vectors, b.vectors) and np.array_equal(a.vector_of_row, b.vector_of_row)
    assert a.manifest["families"] == b.manifest["families"]


def test_ray_engine_on_a_local_two_cpu_ray_equals_the_local_engine(local_ray, day20k, local_result):
    res = api.cluster(day20k, **CFG, engine="ray")
    assert res.manifest["engine"]["kind"] == "ray" and res.manifest["engine"]["cpus"] == 2.0
    assert res.manifest["rows"]["in"] == 20_000 and res.clusters.height > 3
    _same(local_result, res)


def test_ray_engine_on_a_simulated_two_node_cluster_equals_the_local_engine(day20k, local_result):
    from ray.cluster_utils import Cluster

    from clusterer.run.ray_engine import local_runtime_env

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, runtime_env=local_runtime_env(), log_to_driver=False)
        res = api.cluster(day20k, **CFG, engine="ray")
        assert res.manifest["engine"]["nodes"] == 2
        _same(local_result, res)
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_primitives_match_the_local_ones(local_ray):
    from clusterer.accel import fastops
    from clusterer.accel.backend import Backend
    from clusterer.config import EngineConfig, GraphConfig
    from clusterer.graph.knn import knn_graph
    from clusterer.run.ray_engine import RayEngine

    rng = np.random.default_rng(0)
    engine = RayEngine(EngineConfig(kind="ray", knn_shards=3), Backend.CPU)
    keys = rng.integers(0, 500, 20_000).astype(np.uint64)
    got, want = engine.count(keys), fastops.unique_counts(keys)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    vec = rng.normal(size=(3_000, 32)).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    cfg = GraphConfig(k=10)
    sharded, exact = engine.knn(vec, cfg), knn_graph(vec, cfg, Backend.CPU)
    # recall@k of the sharded search against the local index (exact here: all of it, in the same order)
    hits = sum(len(set(a) & set(b)) for a, b in zip(sharded.idx.tolist(), exact.idx.tolist(), strict=True))
    assert hits / exact.idx.size == 1.0
    assert np.array_equal(sharded.idx, exact.idx) and np.allclose(sharded.sim, exact.sim, atol=1e-6)


def test_a_bad_input_file_is_named_through_the_ray_engine(local_ray, tmp_path):
    good, _ = synth.fake_day(seed=1)
    good.write_parquet(tmp_path / "a.parquet")
    good.drop("account_id").write_parquet(tmp_path / "b.parquet")
    with pytest.raises(InputError, match=r"b\.parquet"):
        api.cluster([tmp_path], **CFG, engine="ray")


def test_an_address_nobody_answers_at_is_a_clear_error():
    from clusterer.errors import ConfigError

    traffic, _ = synth.fake_day(seed=1)
    with pytest.raises(ConfigError, match="no Ray cluster answers there"):
        api.cluster(traffic, **CFG, engine="ray", address="127.0.0.1:1")
