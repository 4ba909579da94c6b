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

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix, csgraph

from .config import ClusterConfig
from .graph import Knn

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


def mutual_reachability_mst(knn: Knn, min_samples: int) -> NDArray[np.float64]:
    """MST of the mutual-reachability graph as (n - 1, 3) float64 rows (a, b, weight), sorted by weight.

    Components of the kNN graph are joined in row order by edges of weight 2 * max + 1.
    """
    n = knn.idx.shape[0]
    valid = knn.idx >= 0
    dist = np.where(valid, np.sqrt(np.clip(2.0 - 2.0 * knn.sim.astype(np.float64), 0.0, 4.0)), np.inf)
    if min_samples <= 1:
        core = np.zeros(n)
    else:
        core = dist[:, min(min_samples - 2, dist.shape[1] - 1)].copy()
    finite = np.isfinite(core)
    if not finite.all():  # fewer than min_samples neighbours: use the farthest one there is
        far = np.where(valid, dist, -np.inf).max(axis=1)
        core[~finite] = far[~finite]
        core[~np.isfinite(core)] = 0.0
    rows = np.repeat(np.arange(n), knn.idx.shape[1])[valid.ravel()]
    cols = knn.idx[valid]
    d = dist[valid]
    w = np.maximum(np.maximum(core[rows], core[cols]), d)
    a, b = np.minimum(rows, cols), np.maximum(rows, cols)
    code = a.astype(np.int64) * n + b
    code, first = np.unique(code, return_index=True)
    a, b, w = a[first], b[first], np.maximum(w[first], _MIN_W)
    graph = coo_matrix((w, (a, b)), shape=(n, n)).tocsr()
    mst = csgraph.minimum_spanning_tree(graph).tocoo()
    ea, eb, ew = mst.row.astype(np.float64), mst.col.astype(np.float64), mst.data.astype(np.float64)
    n_comp, comp = csgraph.connected_components(mst, directed=False)
    if n_comp > 1:
        reps = np.unique(comp, return_index=True)[1]  # first row of each component, in component order
        reps = np.sort(reps)
        join = 2.0 * (ew.max() if len(ew) else 1.0) + 1.0
        ea = np.concatenate([ea, np.full(len(reps) - 1, reps[0], np.float64)])
        eb = np.concatenate([eb, reps[1:].astype(np.float64)])
        ew = np.concatenate([ew, np.full(len(reps) - 1, join)])
    order = np.lexsort((eb, ea, ew))  # ties broken by node ids: same input, same tree
    return np.ascontiguousarray(np.stack([ea[order], eb[order], ew[order]], axis=1))


def cluster_graph(knn: Knn, cfg: ClusterConfig) -> Clusters:
    """HDBSCAN labels for the rows of a kNN graph.

    Raises nothing for disconnected graphs; fewer than ``min_cluster_size`` rows give all noise.
    """
    from hdbscan._hdbscan_linkage import label
    from hdbscan._hdbscan_tree import compute_stability, condense_tree, get_clusters

    n = knn.idx.shape[0]
    if n < max(cfg.min_cluster_size, 2):
        return _empty(n)
    mst = mutual_reachability_mst(knn, cfg.min_samples)
    slt = label(mst)
    condensed = condense_tree(slt, cfg.min_cluster_size)
    stability = compute_stability(condensed)
    raw, prob, stab = get_clusters(condensed, stability, cfg.selection, False, False, cfg.epsilon, 0)
    raw = np.asarray(raw, dtype=np.int64)
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
