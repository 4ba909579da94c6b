"""HDBSCAN over the sparse kNN graph, memory O(n * k).

HDBSCAN needs only core distances and a minimum spanning tree of mutual-reachability distances; both
come from the kNN graph. Core distance = distance to the ``min_samples``-th nearest point (the point
itself counted, as in the ``hdbscan`` package); edge weight = max(core_i, core_j, d_ij) with
d = ``graph.edges.distance`` (sqrt(2 - 2 sim), the Euclidean distance of unit vectors). The MST of that
sparse graph is taken with SciPy; disconnected components are joined explicitly by edges heavier than any
real one, so they separate at the top of the hierarchy instead of failing. Condensation and cluster selection are the
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
from ..graph.edges import knn_edges
from ..graph.knn import Knn
from .labels import by_first_row

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
    # codes are sorted (unique_first sorts; otherwise they came strictly increasing): CSR straight from them,
    # no (row, col) COO copies of the day's largest array
    indptr = np.searchsorted(code, np.arange(n + 1, dtype=np.int64) * n)
    indices = (code % n).astype(np.int32 if n < 2**31 else np.int64)
    del code
    graph = csr_matrix((w, indices, indptr), shape=(n, n))
    del indices, w
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
    labels, order = by_first_row(raw)  # canonical numbering: same input, same IDs
    persistence = np.asarray(stab, dtype=np.float64)[order] if len(stab) == len(order) else np.zeros(len(order))
    return Clusters(labels=labels, probability=np.asarray(prob, dtype=np.float32), persistence=persistence)
