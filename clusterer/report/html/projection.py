"""A 2-D map of the day from the run's saved vectors: a bounded, weighted sample laid out with t-SNE.

A day's rows share distinct vectors (every prompt of a rigid scaffold embeds alike), so points are
distinct (vector, cluster) pairs, each standing for its copies. At most ``budget`` points are drawn:
every flagged family gets a quota so that it is visible however small, the rest is a weighted sample
(Efraimidis–Spirakis keys, weight = copies) so that the map shows the day's mass, not its long tail of
one-off prompts. t-SNE (scikit-learn, PCA initialisation, fixed seed) keeps clusters apart where PCA would
stack hundreds of them on top of each other. Barnes–Hut t-SNE over 3,000 points takes tens of seconds on
two busy cores, so only up to ``LANDMARKS`` points are laid out by t-SNE and the others are placed among
their most similar landmarks: the cost is bounded by the sample, never by the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from ...store.history import VECTOR_OF_ROW, VECTORS

MAP_POINTS = 3_000
LANDMARKS = 1_000


@dataclass(frozen=True, slots=True)
class DayMap:
    """Sampled points of the day in the unit square.

    ``xy`` float32 (m, 2) in [0, 1]; ``cluster`` int64 (m,) (−1 = noise); ``copies`` int64 (m,) rows each
    point stands for; ``rows`` rows with a vector in the day; ``distinct`` distinct (vector, cluster) pairs.
    """

    xy: NDArray[np.float32]
    cluster: NDArray[np.int64]
    copies: NDArray[np.int64]
    rows: int
    distinct: int


def sample_points(
    vector_of_row: NDArray[np.int64],
    cluster_of_row: NDArray[np.int64],
    flagged: NDArray[np.int64],
    budget: int = MAP_POINTS,
    seed: int = 0,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], int]:
    """Choose at most ``budget`` distinct (vector, cluster) points.

    Returns ``(vector index, cluster, copies, distinct pairs)`` of the chosen points, ordered by vector.
    Flagged clusters get up to ``max(15, 0.4 * budget / n_flagged)`` points each (capped at 200); the rest
    of the budget is a sample weighted by copies.
    """
    ok = vector_of_row >= 0
    v, c = vector_of_row[ok].astype(np.int64), cluster_of_row[ok].astype(np.int64)
    if len(v) == 0 or budget <= 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, 0
    key = v * (int(c.max()) + 2) + (c + 1)
    uniq, first, copies = np.unique(key, return_index=True, return_counts=True)
    pv, pc = v[first], c[first]
    rng = np.random.default_rng(seed)
    # Efraimidis–Spirakis: the top-k of u^(1/w) is a weighted sample without replacement
    prio = np.log(rng.random(len(uniq))) / copies
    chosen = np.zeros(len(uniq), bool)
    is_flagged = np.isin(pc, flagged)
    if is_flagged.any():
        quota = int(min(200, max(15, 0.4 * budget / max(len(flagged), 1))))
        idx = np.flatnonzero(is_flagged)
        order = idx[np.lexsort((-prio[idx], pc[idx]))]
        rank = np.arange(len(order)) - np.searchsorted(pc[order], pc[order])
        chosen[order[rank < quota]] = True
    left = budget - int(chosen.sum())
    if left > 0:
        rest = np.flatnonzero(~chosen)
        chosen[rest[np.argsort(-prio[rest], kind="stable")[:left]]] = True
    pick = np.flatnonzero(chosen)[:budget]
    return pv[pick], pc[pick], copies[pick].astype(np.int64), len(uniq)


def _tsne(x: NDArray[np.float32], seed: int) -> NDArray[np.float32]:
    """t-SNE (PCA to ≤ 50 dims first) of unit vectors; PCA alone below 40 points, a line below 4."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    m = len(x)
    if m < 4:
        return np.column_stack([np.arange(m, dtype=np.float32), np.zeros(m, np.float32)])
    if not np.ptp(x, axis=0).any():  # one point many times (a day of one repeated text): nothing to spread
        return np.zeros((m, 2), np.float32)
    dims = min(50, x.shape[1], m - 1)
    red = PCA(dims, random_state=seed).fit_transform(x) if x.shape[1] > dims else x
    if m < 40:
        return np.asarray(red[:, :2] if red.shape[1] >= 2 else np.column_stack([red[:, 0], np.zeros(m)]), np.float32)
    tsne = TSNE(2, perplexity=min(30.0, (m - 1) / 3), init="pca", random_state=seed, max_iter=500, angle=0.6)
    # one OpenMP thread: the Barnes-Hut gradient is too small to share, and on a busy machine spinning
    # threads made it 4-8x slower (800 points: 1.7 s on one thread, 4.2 s on two, 13.8 s unlimited)
    with threadpool_limits(1, user_api="openmp"):
        return np.asarray(tsne.fit_transform(red), np.float32)


def _landmarks(cluster: NDArray[np.int64], n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """``n`` indexes, at least a few from every cluster (so each has an anchor), the rest at random."""
    order = rng.permutation(len(cluster))
    first = order[np.lexsort((np.arange(len(order)), cluster[order]))]
    rank = np.arange(len(first)) - np.searchsorted(cluster[first], cluster[first])
    must = first[rank < 3]
    if len(must) >= n:
        return np.sort(rng.choice(must, n, replace=False))
    rest = np.setdiff1d(order, must, assume_unique=True)
    return np.sort(np.concatenate([must, rng.choice(rest, n - len(must), replace=False)]))


def layout(
    vectors: NDArray[np.floating], cluster: NDArray[np.int64], seed: int = 0, landmarks: int = LANDMARKS
) -> NDArray[np.float32]:
    """2-D coordinates of (m, d) vectors in [0, 1] per axis.

    Up to ``landmarks`` points get a t-SNE layout; every other point goes to the similarity-weighted mean
    of its 5 most similar landmarks (cosine, softmax at temperature 0.05) plus a small seeded jitter, the
    out-of-sample extension of landmark t-SNE: the map costs one small t-SNE and an (m × landmarks)
    product, whatever the sample size. ``cluster`` (m,) keeps a few landmarks in every cluster.
    """
    x = np.asarray(vectors, np.float32)
    m = len(x)
    if m == 0:
        return np.zeros((0, 2), np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    if m <= landmarks:
        xy = _tsne(x, seed)
    else:
        lm = _landmarks(np.asarray(cluster, np.int64), landmarks, rng)
        ylm = _tsne(x[lm], seed)
        xy = np.empty((m, 2), np.float32)
        k = 5
        for s in range(0, m, 4096):
            sim = x[s : s + 4096] @ x[lm].T
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            ts = np.take_along_axis(sim, top, axis=1)
            w = np.exp((ts - ts.max(axis=1, keepdims=True)) / 0.05)
            w /= w.sum(axis=1, keepdims=True)
            xy[s : s + 4096] = np.einsum("ik,ikj->ij", w, ylm[top])
        spread = float(np.ptp(ylm, axis=0).max()) or 1.0
        xy += rng.normal(0.0, 0.004 * spread, xy.shape).astype(np.float32)
        xy[lm] = ylm
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return ((xy - lo) / np.where(hi > lo, hi - lo, 1.0)).astype(np.float32)


def day_map(
    run_dir: Path,
    cluster_of_row: NDArray[np.int64],
    flagged: NDArray[np.int64],
    budget: int = MAP_POINTS,
    seed: int = 0,
) -> DayMap | None:
    """The map of a run directory, or None when the run saved no vectors (or none match its rows)."""
    vp, op = Path(run_dir) / VECTORS, Path(run_dir) / VECTOR_OF_ROW
    if not (vp.is_file() and op.is_file()):
        return None
    try:
        vectors = np.load(vp, mmap_mode="r")
        of_row = np.load(op)
    except (OSError, ValueError, EOFError):  # cut short or not an array: no map, as when none was saved
        return None
    if len(of_row) != len(cluster_of_row) or (len(of_row) and of_row.max() >= len(vectors)):
        return None
    v, c, copies, distinct = sample_points(of_row, cluster_of_row, flagged, budget, seed)
    if len(v) == 0:
        return None
    xy = layout(vectors[v], c, seed)
    return DayMap(xy=xy, cluster=c, copies=copies, rows=int((of_row >= 0).sum()), distinct=distinct)
