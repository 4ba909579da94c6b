"""Cluster: HDBSCAN over the sparse kNN graph, memory O(n * k).

HDBSCAN needs only core distances and a minimum spanning tree of mutual-reachability distances; both
come from the kNN graph. Core distance = distance to the ``min_samples``-th nearest point (the point
itself counted, as in the ``hdbscan`` package); edge weight = max(core_i, core_j, d_ij) with
d = sqrt(2 - 2 cos), the Euclidean distance of unit vectors. The MST of that sparse graph is taken with
SciPy; disconnected components are joined explicitly by edges heavier than any real one, so they
separate at the top of the hierarchy instead of failing. Condensation and cluster selection are the
``hdbscan`` package's own routines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csgraph, csr_matrix

from ..accel import fastops
from ..config import ClusterConfig
from ..graph.knn import Knn
from ..vectors.encoders import RowVectors

_MIN_W = 1e-9  # SciPy drops zero-weight edges; exact duplicates get this instead


@dataclass(frozen=True, slots=True)
class Clusters:
    """``labels``: int64 (n,), -1 = noise, clusters numbered 0.. by their first row;
    ``probability``: float32 (n,) HDBSCAN membership strength; ``persistence``: float64 (n_clusters,)."""

    labels: NDArray[np.int64]
    probability: NDArray[np.float32]
    persistence: NDArray[np.float64]


def _empty(n: int) -> Clusters:
    return Clusters(np.full(n, -1, np.int64), np.zeros(n, np.float32), np.zeros(0, np.float64))


@numba.njit(cache=True)
def _smallest(n, i, j, d, m):  # pragma: no cover - compiled
    """Per node, its m smallest incident edge lengths (ascending, inf-padded) and its degree."""
    best = np.full((n, m), np.inf)
    deg = np.zeros(n, np.int64)
    for e in range(len(d)):
        for node in (i[e], j[e]):
            deg[node] += 1
            x = d[e]
            if x < best[node, m - 1]:
                p = m - 1
                while p > 0 and best[node, p - 1] > x:
                    best[node, p] = best[node, p - 1]
                    p -= 1
                best[node, p] = x
    return best, deg


def core_distances(
    n: int, i: NDArray[np.int64], j: NDArray[np.int64], d: NDArray[np.float64], min_samples: int
) -> NDArray[np.float64]:
    """Distance from each node to its (min_samples - 1)-th nearest neighbour over the undirected edges
    (the node itself counts as the first of ``min_samples``, as in the ``hdbscan`` package); nodes with
    fewer edges take their farthest edge, isolated nodes 0. One pass over the edges keeping each node's
    ``min_samples - 1`` smallest: memory O(n · min_samples), not O(edges)."""
    if min_samples <= 1 or len(d) == 0:
        return np.zeros(n)
    m = min_samples - 1
    best, deg = _smallest(n, i, j, np.asarray(d, np.float64), m)
    have = np.minimum(deg, m)
    return np.where(deg > 0, best[np.arange(n), np.maximum(have - 1, 0)], 0.0)


def mutual_reachability_mst(
    n: int, i: NDArray[np.int64], j: NDArray[np.int64], d: NDArray[np.float64], min_samples: int
) -> NDArray[np.float64]:
    """MST of the mutual-reachability graph over undirected edges (i, j, d) as (n - 1, 3) float64 rows
    (a, b, weight), sorted by weight. Components are joined in row order by edges of weight 2 * max + 1."""
    core = core_distances(n, i, j, d, min_samples)
    w = np.maximum(np.maximum(core[i], core[j]), d)
    np.maximum(w, _MIN_W, out=w)
    code = np.minimum(i, j).astype(np.int64) * n + np.maximum(i, j)
    if not (len(code) < 2 or (np.diff(code) > 0).all()):  # candidate pairs come unique and sorted already
        code, first = fastops.unique_first(code)
        w = w[first]
    del i, j, d
    graph = csr_matrix((w, (code // n, code % n)), shape=(n, n))
    del code, w
    mst = csgraph.minimum_spanning_tree(graph).tocoo()
    ea, eb, ew = mst.row.astype(np.float64), mst.col.astype(np.float64), mst.data.astype(np.float64)
    n_comp, comp = csgraph.connected_components(mst, directed=False)
    if n_comp > 1:
        reps = np.sort(np.unique(comp, return_index=True)[1])  # first row of each component
        join = 2.0 * (ew.max() if len(ew) else 1.0) + 1.0
        ea = np.concatenate([ea, np.full(len(reps) - 1, reps[0], np.float64)])
        eb = np.concatenate([eb, reps[1:].astype(np.float64)])
        ew = np.concatenate([ew, np.full(len(reps) - 1, join)])
    order = fastops.lexsort(eb, ea, ew)  # ties broken by node ids: same input, same tree
    return np.ascontiguousarray(np.stack([ea[order], eb[order], ew[order]], axis=1))


def knn_edges(knn: Knn) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """The kNN graph as undirected edges (i, j, d) with d = sqrt(2 - 2 cos)."""
    valid = knn.idx >= 0
    i = np.repeat(np.arange(knn.idx.shape[0]), knn.idx.shape[1])[valid.ravel()]
    j = knn.idx[valid]
    d = np.sqrt(np.clip(2.0 - 2.0 * knn.sim[valid].astype(np.float64), 0.0, 4.0))
    return i.astype(np.int64), j.astype(np.int64), d


def cluster_graph(knn: Knn, cfg: ClusterConfig) -> Clusters:
    """HDBSCAN labels for the rows of a kNN graph (see :func:`cluster_edges`)."""
    return cluster_edges(knn.idx.shape[0], *knn_edges(knn), cfg)


# The `hdbscan` package has no public entry point for "labels from a minimum spanning tree", so the tree
# condensation and cluster selection are called in its private modules, pinned to the tested release in
# pyproject.toml. tests/test_cluster.py checks these names and parameters, so an upgrade that changes them
# fails there, loudly, instead of mis-clustering. (fast_hdbscan's public precomputed-graph path was measured
# as the alternative: bench/bench_hdbscan.py, README "Pipeline and which library does what".)
HDBSCAN_TESTED = "0.8.44"
HDBSCAN_PRIVATE_API = {
    "hdbscan._hdbscan_linkage.label": ("L",),
    "hdbscan._hdbscan_tree.condense_tree": ("hierarchy", "min_cluster_size"),
    "hdbscan._hdbscan_tree.compute_stability": ("condensed_tree",),
    "hdbscan._hdbscan_tree.get_clusters": (
        "tree",
        "stability",
        "cluster_selection_method",
        "allow_single_cluster",
        "match_reference_implementation",
        "cluster_selection_epsilon",
        "max_cluster_size",
    ),
}


def hdbscan_tree_api() -> tuple[Any, Any, Any, Any]:
    """``label, condense_tree, compute_stability, get_clusters`` from the installed ``hdbscan``.

    Raises:
        RuntimeError: the installed hdbscan lacks one of them (a release other than the tested one).
    """
    try:
        from hdbscan._hdbscan_linkage import label
        from hdbscan._hdbscan_tree import compute_stability, condense_tree, get_clusters
    except ImportError as err:  # pragma: no cover - only with an untested hdbscan
        raise RuntimeError(
            f"the installed hdbscan lacks the tree routines clusterer uses (tested with hdbscan=={HDBSCAN_TESTED}); "
            f"install that version: {err}"
        ) from err
    return label, condense_tree, compute_stability, get_clusters


def cluster_edges(
    n: int, i: NDArray[np.int64], j: NDArray[np.int64], d: NDArray[np.float64], cfg: ClusterConfig
) -> Clusters:
    """HDBSCAN labels for n nodes joined by undirected edges (i, j) at distance d (any non-negative
    scale). Raises nothing for disconnected graphs; fewer than ``min_cluster_size`` nodes give all noise.
    """
    if n < max(cfg.min_cluster_size, 2):
        return _empty(n)
    label, condense_tree, compute_stability, get_clusters = hdbscan_tree_api()
    mst = mutual_reachability_mst(n, i, j, d, cfg.min_samples)
    slt = label(mst)
    condensed = condense_tree(slt, min_cluster_size=cfg.min_cluster_size)
    stability = compute_stability(condensed)

    def select(single: bool, epsilon: float) -> tuple[NDArray[np.int64], Any, Any]:
        raw, prob, stab = get_clusters(
            condensed,
            stability,
            cluster_selection_method=cfg.selection,
            allow_single_cluster=single,
            match_reference_implementation=False,
            cluster_selection_epsilon=epsilon,
            max_cluster_size=0,
        )
        return np.asarray(raw, dtype=np.int64), prob, stab

    raw, prob, stab = select(False, cfg.epsilon)
    if not (raw >= 0).any():
        # nothing selected below the root: a day that is one dense group (one template, payloads that
        # normalise alike) is that group, not all noise (epsilon 0: the root's own density decides)
        raw, prob, stab = select(True, 0.0)
    # canonical numbering: cluster order = order of each cluster's first row
    labels = np.full(n, -1, np.int64)
    ids = np.unique(raw[raw >= 0])
    if len(ids):
        first = np.array([np.flatnonzero(raw == c)[0] for c in ids]) if len(ids) < 64 else _first_rows(raw, ids)
        order = ids[np.argsort(first, kind="stable")]
        remap = np.full(int(ids.max()) + 1, -1, np.int64)
        remap[order] = np.arange(len(order))
        labels[raw >= 0] = remap[raw[raw >= 0]]
        persistence = np.asarray(stab, dtype=np.float64)[order] if len(stab) == len(ids) else np.zeros(len(ids))
    else:
        persistence = np.zeros(0)
    return Clusters(labels=labels, probability=np.asarray(prob, dtype=np.float32), persistence=persistence)


def _first_rows(raw: NDArray[np.int64], ids: NDArray[np.int64]) -> NDArray[np.int64]:
    pos = np.flatnonzero(raw >= 0)
    lab = raw[pos]
    order = np.lexsort((pos, lab))
    lab_sorted = lab[order]
    starts = np.searchsorted(lab_sorted, ids)
    return pos[order][starts]


def centroids(labels: NDArray[np.int64], emb: NDArray[np.float32] | RowVectors, k: int) -> NDArray[np.float32]:
    """Unit mean direction of each cluster's rows of ``emb``: float32 (k, d); noise rows (-1) ignored."""
    m = np.flatnonzero(labels >= 0)
    dim = emb.dim if isinstance(emb, RowVectors) else emb.shape[1]
    if k == 0 or len(m) == 0:
        return np.zeros((k, dim), np.float32)
    if isinstance(emb, RowVectors):
        cols, mat = emb.of_row[m], emb.vectors
    else:
        cols, mat = m, emb
    member = csr_matrix((np.ones(len(m), np.float32), (labels[m], cols)), shape=(k, len(mat)))
    cent = np.asarray(member @ mat, dtype=np.float64)
    cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
    return cent.astype(np.float32)


def attach_noise(
    labels: NDArray[np.int64], i: NDArray[np.int64], j: NDArray[np.int64], sim: NDArray[np.float32], min_sim: float
) -> NDArray[np.int64]:
    """Give each noise node the cluster of its most similar clustered neighbour when that edge's similarity
    is at least ``min_sim`` (HDBSCAN leaves the thin edge of a dense template family as noise; one strong
    edge to a member is evidence enough). One pass, so attached nodes do not chain further."""
    if min_sim > 1.0 or len(i) == 0:
        return labels
    src = np.concatenate([i, j])
    dst = np.concatenate([j, i])
    s = np.concatenate([sim, sim])
    ok = (labels[src] < 0) & (labels[dst] >= 0) & (s >= min_sim)
    if not ok.any():
        return labels
    src, dst, s = src[ok], dst[ok], s[ok]
    order = fastops.lexsort(dst, -s, src)  # per noise node: best similarity first, ties to the lowest row
    src, dst = src[order], dst[order]
    first = np.r_[True, src[1:] != src[:-1]]
    out = labels.copy()
    out[src[first]] = labels[dst[first]]
    return out


def propagate_labels(
    labels: NDArray[np.int64],
    i: NDArray[np.int64],
    j: NDArray[np.int64],
    sim: NDArray[np.float32],
    min_sim: float,
    min_votes: int,
    min_share: float,
    rounds: int,
) -> NDArray[np.int64]:
    """Grow clusters into their noise fringe by neighbour votes.

    A loose family (a scaffold paraphrased per prompt) beside dense ones can peel off point by point in the
    hierarchy and read as noise, though its members' neighbours are each other and the family's cluster.
    Each round, a noise node joins the cluster holding most of its neighbours over edges with similarity ≥
    ``min_sim`` when that cluster has at least ``min_votes`` of them and at least ``min_share`` of all such
    neighbours (noise included); nodes joined in one round vote in the next, for up to ``rounds`` rounds.
    """
    if rounds <= 0 or len(i) == 0:
        return labels
    src = np.concatenate([i, j])
    dst = np.concatenate([j, i])
    ok = np.concatenate([sim, sim]) >= min_sim
    src, dst = src[ok], dst[ok]
    deg = np.bincount(src, minlength=len(labels))
    out = labels.copy()
    for _ in range(rounds):
        m = (out[src] < 0) & (out[dst] >= 0)
        if not m.any():
            break
        width = int(out.max()) + 1
        code, votes = fastops.unique_counts(src[m] * width + out[dst[m]])
        node, cl = code // width, code % width
        order = fastops.lexsort(cl, -votes, node)
        node, cl, votes = node[order], cl[order], votes[order]
        first = np.r_[True, node[1:] != node[:-1]]
        node, cl, votes = node[first], cl[first], votes[first]
        good = (votes >= min_votes) & (votes >= min_share * deg[node])
        if not good.any():
            break
        out[node[good]] = cl[good]
    return out


def _cores(
    labels: NDArray[np.int64], sk_indptr: NDArray[np.int64], sk_hashes: NDArray[np.uint64], min_shingles: int
) -> tuple[csr_matrix, NDArray[np.float64], NDArray[np.uint64], NDArray[np.int64]]:
    """Each cluster's *core*: the skeleton shingles held by at least half its members (cores smaller than
    ``min_shingles`` are left empty). Returns (binary (k × shingles) core matrix, core sizes, the sorted
    shingle hashes its columns stand for, the row of every skeleton entry)."""
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    row_of = np.repeat(np.arange(len(labels)), np.diff(sk_indptr))
    member = labels[row_of] >= 0
    code = labels[row_of[member]].astype(np.int64)
    uniq_h, inv = fastops.unique_inverse(sk_hashes[member])
    counts = csr_matrix((np.ones(len(inv)), (code, inv)), shape=(k, max(len(uniq_h), 1)))
    counts.sum_duplicates()
    size = np.bincount(labels[labels >= 0], minlength=k).astype(np.float64)
    core = csr_matrix(counts.multiply(1.0 / np.maximum(size, 1.0)[:, None]))
    core.data = (core.data >= 0.5).astype(np.float64)
    core.eliminate_zeros()
    core_size = np.asarray(core.sum(axis=1)).ravel()
    core = csr_matrix(core.multiply((core_size >= min_shingles)[:, None].astype(np.float64)))
    core.eliminate_zeros()
    return core, np.asarray(core.sum(axis=1)).ravel(), uniq_h, row_of


def _held(
    rows_mask: NDArray[np.bool_],
    row_of: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    uniq_h: NDArray[np.uint64],
    core: csr_matrix,
    n: int,
) -> csr_matrix:
    """(rows × clusters) number of each cluster's core shingles that each selected row holds."""
    sel = rows_mask[row_of]
    h = sk_hashes[sel]
    pos = np.minimum(np.searchsorted(uniq_h, h), max(len(uniq_h) - 1, 0))
    hit = uniq_h[pos] == h if len(uniq_h) else np.zeros(len(h), bool)
    x = csr_matrix((np.ones(int(hit.sum())), (row_of[sel][hit], pos[hit])), shape=(n, core.shape[1]))
    return (x @ core.T).tocsr()


def core_share(
    labels: NDArray[np.int64], sk_indptr: NDArray[np.int64], sk_hashes: NDArray[np.uint64], min_shingles: int
) -> NDArray[np.float32]:
    """float32 (n,): the share of its own cluster's core (see :func:`attach_by_template`) each row holds;
    0 for noise and for clusters without a core. A member that carries its cluster's scaffold scores
    high; a prompt that joined through a loose edge without the scaffold scores near 0."""
    out = np.zeros(len(labels), np.float32)
    if len(labels) == 0 or labels.max() < 0 or len(sk_hashes) == 0:
        return out
    core, core_size, uniq_h, row_of = _cores(labels, sk_indptr, sk_hashes, min_shingles)
    held = _held(labels >= 0, row_of, sk_hashes, uniq_h, core, len(labels)).tocoo()
    own = labels[held.row] == held.col
    out[held.row[own]] = held.data[own] / np.maximum(core_size[held.col[own]], 1.0)
    return out


def attach_by_template(
    labels: NDArray[np.int64],
    sk_indptr: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    min_share: float,
    min_shingles: int,
) -> NDArray[np.int64]:
    """Give each noise row the cluster whose template it carries.

    A cluster's *core* is the set of skeleton shingles held by at least half its members. A noise row
    joins the cluster whose core it holds the largest share of, when that share is at least ``min_share``
    and at least ``min_shingles`` core shingles (cores smaller than that take part in nothing). This is
    what the prompt graph misses on big days: a member of a large family whose payload dominates its
    text (a long document, a re-used problem) can have no graph neighbour inside the family, yet it
    carries the family's scaffold. The rule is a share of the row's own shingles and of the core, so it
    does not drift with the size of the day. Ties go to the lowest cluster id.

    ``labels``: int64 (n,) (−1 noise); ``sk_indptr`` / ``sk_hashes``: per-row skeletons (CSR, sorted).
    """
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    if k == 0 or min_share > 1.0 or len(sk_hashes) == 0:
        return labels
    core, core_size, uniq_h, row_of = _cores(labels, sk_indptr, sk_hashes, min_shingles)
    if core.nnz == 0:
        return labels
    held = _held(labels < 0, row_of, sk_hashes, uniq_h, core, len(labels)).tocoo()
    share = held.data / np.maximum(core_size[held.col], 1.0)
    ok = (share >= min_share) & (held.data >= min_shingles)
    r, c, s = held.row[ok].astype(np.int64), held.col[ok].astype(np.int64), share[ok]
    if len(r) == 0:
        return labels
    order = fastops.lexsort(c, -s, r)  # per row: best share first, ties to the lowest cluster
    r, c = r[order], c[order]
    first = np.r_[True, r[1:] != r[:-1]]
    out = labels.copy()
    out[r[first]] = c[first]
    return out
