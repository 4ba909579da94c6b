import numpy as np
import pytest

from clusterer.accel import hashing, reference
from clusterer.accel.backend import Backend
from clusterer.config import GraphConfig
from clusterer.graph.knn import knn_graph


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


def _tied_vectors():
    """28 distinct unit vectors (two of eight coordinates set): every row has 12 neighbours at exactly 0.5."""
    from itertools import combinations

    x = np.zeros((28, 8), np.float32)
    for r, (a, b) in enumerate(combinations(range(8), 2)):
        x[r, [a, b]] = 1 / np.sqrt(2)
    return x[np.random.default_rng(4).permutation(28)]


def _by_similarity_then_row(x, k):
    s = (x.astype(np.float64) @ x.T.astype(np.float64)).round(6)
    np.fill_diagonal(s, -np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(len(x)), s.shape), -s), axis=1)
    return order[:, :k]


def test_equal_similarities_are_ordered_by_row_in_every_search():
    """A tie at the k-th place is settled by row, the same in the exact search and in the sharded search the
    Ray engine merges: a graph that does not depend on the library's heap order or on the shards."""
    from clusterer.run.ray_engine import _search_shard, merge_topk

    x, k = _tied_vectors(), 5
    want = _by_similarity_then_row(x, k)
    assert np.array_equal(knn_graph(x, GraphConfig(k=k), Backend.CPU).idx, want)
    for shards in (2, 3):
        bounds = np.linspace(0, len(x), shards + 1).astype(int)
        parts = [_search_shard(x, int(a), int(b), k + 1) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        knn = merge_topk(np.concatenate([p[0] for p in parts], 1), np.concatenate([p[1] for p in parts], 1), k + 1, k)
        assert np.array_equal(knn.idx, want), shards


def test_torch_brute_force_matches_the_exact_index(monkeypatch):
    """The GPU path without faiss-gpu (torch brute force in blocks of queries and of vectors), run on the CPU: over
    any blocking it finds the exact index's neighbours, and ties come back in the same row order."""
    from clusterer.graph import knn as knn_mod

    x = _unit(300, 32, 5)
    want = knn_graph(x, GraphConfig(k=8), Backend.CPU)
    tied = _tied_vectors()
    # one tile; query blocks (300 rows: 43, the last one short); query and vector blocks (a last one of 20
    # vectors); vector blocks of 5, fewer than the candidates wanted per row (the tied set's last one of 3)
    for block, db_block in ((8192, 1 << 17), (7, 1 << 17), (7, 40), (5, 5)):
        monkeypatch.setattr(knn_mod, "_BLOCK", block)
        monkeypatch.setattr(knn_mod, "_DB_BLOCK", db_block)
        idx, sim = knn_mod._torch_search(x, 9, device="cpu")
        got = knn_mod.pad_knn(idx, sim, 9, 8)
        assert np.array_equal(got.idx, want.idx), (block, db_block)
        np.testing.assert_allclose(got.sim, want.sim, atol=1e-5)
        idx, sim = knn_mod._torch_search(tied, 6, device="cpu")
        assert np.array_equal(knn_mod.pad_knn(idx, sim, 6, 5).idx, _by_similarity_then_row(tied, 5)), (block, db_block)


def test_fewer_points_than_k_are_padded():
    knn = knn_graph(_unit(3, 4, 0), GraphConfig(k=5), Backend.CPU)
    assert knn.idx.shape == (3, 5)
    assert (knn.idx[:, 2:] == -1).all() and (knn.idx[:, :2] >= 0).all()
    assert knn_graph(_unit(1, 4, 0), GraphConfig(k=5), Backend.CPU).idx.tolist() == [[-1] * 5]


def test_lsh_pairs_find_template_mates_with_bounded_count():
    from clusterer.graph.lsh import lsh_pairs

    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**62, 40).astype(np.uint64)
    rows = [np.unique(np.concatenate([base, rng.integers(0, 2**62, 3).astype(np.uint64)])) for _ in range(300)]
    rows += [np.unique(rng.integers(0, 2**62, 40).astype(np.uint64)) for _ in range(300)]
    rows += [np.zeros(0, np.uint64)] * 10
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    sig = reference.minhash_signatures(indptr, np.concatenate(rows), hashing.perm_seeds(128, 0))
    pairs = lsh_pairs(sig, np.diff(indptr).astype(np.int32), GraphConfig(lsh_bands=32, lsh_links=2))
    assert (pairs.i < pairs.j).all()
    tmpl = (pairs.i < 300) & (pairs.j < 300)
    assert tmpl.mean() > 0.99  # unrelated sets almost never collide
    assert len(pairs.i) <= 32 * 2 * 600
    assert len(np.unique(np.concatenate([pairs.i[tmpl], pairs.j[tmpl]]))) == 300  # every template row linked
    assert not np.isin(np.arange(600, 610), np.concatenate([pairs.i, pairs.j])).any()  # empty skeletons skipped


def test_score_edges_combines_template_and_semantic():
    from clusterer.graph.edges import Pairs, score_edges

    x = _unit(4, 8, 1)
    pairs = Pairs(i=np.array([0, 1]), j=np.array([2, 3]))
    tmpl = np.array([1.0, 0.0], np.float32)
    e = score_edges(pairs, x, tmpl, GraphConfig(template_weight=0.25))
    cos = np.array([x[0] @ x[2], x[1] @ x[3]])
    np.testing.assert_allclose(e.sim, 0.25 * tmpl + 0.75 * cos, rtol=1e-6)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_find_most_exact_neighbours(kind):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 32))
    x = (centres[rng.integers(0, 40, 4000)] + 0.3 * rng.normal(size=(4000, 32))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    exact = knn_graph(x, GraphConfig(k=10, index="flat"), Backend.CPU)
    got = knn_graph(x, GraphConfig(k=10, index=kind), Backend.CPU)
    assert got.idx.shape == exact.idx.shape
    recall = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(got.idx, exact.idx, strict=True)])
    assert recall > 0.9
    assert not (got.idx == np.arange(4000)[:, None]).any()


def test_index_choice_by_size():
    from clusterer.graph.knn import index_kind

    assert index_kind(10_000, GraphConfig()) == "flat"
    assert index_kind(5_000_000, GraphConfig()) == "hnsw"
    assert index_kind(5_000_000, GraphConfig(), gpu=True) == "ivf"
    assert index_kind(10, GraphConfig(index="hnsw")) == "hnsw"


def test_knn_over_distinct_vectors_matches_exact_search_over_rows():
    rng = np.random.default_rng(1)
    uniq = _unit(300, 16, 2)
    of_row = np.concatenate([np.arange(300), rng.integers(0, 40, 700)])  # 40 vectors with many copies
    rng.shuffle(of_row)
    rows = uniq[of_row]
    k = 12
    exact = knn_graph(rows, GraphConfig(k=k, index="flat"), Backend.CPU)
    got = knn_graph(uniq, GraphConfig(k=k, index="flat"), Backend.CPU, of_row=of_row)
    assert got.idx.shape == (1000, k)
    assert not (got.idx == np.arange(1000)[:, None]).any()
    # same similarities per row (which copy of a tied vector comes back is arbitrary)
    np.testing.assert_allclose(got.sim, exact.sim, atol=1e-5)
    np.testing.assert_allclose(np.einsum("ij,ikj->ik", rows, rows[got.idx]), got.sim, atol=1e-5)
    # copies of one vector link to each other first
    r = int(np.flatnonzero(np.bincount(of_row)[of_row] > k + 1)[0])
    assert (of_row[got.idx[r]] == of_row[r]).all()


def test_pair_cosine_over_shared_vectors_is_the_product_of_each_pair(monkeypatch):
    """Rows sharing vectors: each distinct vector pair is computed once, and every pair gets exactly the
    value of its own two rows' product (in either order), block by block."""
    from clusterer.graph import edges
    from clusterer.vectors.rows import RowVectors

    rng = np.random.default_rng(4)
    vec = rng.normal(size=(7, 16)).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    rows = RowVectors(vec, rng.integers(0, 7, 300).astype(np.int64))
    i, j = rng.integers(0, 300, 5000), rng.integers(0, 300, 5000)
    want = np.einsum("ij,ij->i", rows.take(i), rows.take(j))
    assert np.array_equal(edges.pair_cosine(rows, i, j), want)
    assert np.array_equal(edges.pair_cosine(rows, j, i), want)
    monkeypatch.setattr(edges, "PAIR_BLOCK", 333)
    assert np.array_equal(edges.pair_cosine(rows, i, j, chunk=50), want)
    dense = rows.take(np.arange(300))
    assert np.array_equal(edges.pair_cosine(dense, i, j), want)
