import numpy as np
import pytest

from clusterer.backend import Backend
from clusterer.config import GraphConfig
from clusterer.graph import knn_graph


def _unit(n, d, seed):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_knn_matches_brute_force(backend, seed):
    x = _unit(300, 32, seed)
    knn = knn_graph(x, GraphConfig(k=8), backend)
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    want = np.sort(s, axis=1)[:, ::-1][:, :8]
    np.testing.assert_allclose(knn.sim, want, atol=2e-3 if backend is Backend.GPU else 1e-5)
    assert not (knn.idx == np.arange(300)[:, None]).any()


def test_exact_duplicates_never_list_themselves():
    x = _unit(20, 8, 3)
    x[5:12] = x[5]
    knn = knn_graph(x, GraphConfig(k=4), Backend.CPU)
    assert not (knn.idx == np.arange(20)[:, None]).any()
    assert (knn.sim[5:12] > 0.999).all()


def test_fewer_points_than_k_are_padded():
    knn = knn_graph(_unit(3, 4, 0), GraphConfig(k=5), Backend.CPU)
    assert knn.idx.shape == (3, 5)
    assert (knn.idx[:, 2:] == -1).all() and (knn.idx[:, :2] >= 0).all()
    assert knn_graph(_unit(1, 4, 0), GraphConfig(k=5), Backend.CPU).idx.tolist() == [[-1] * 5]
