"""Refinement after HDBSCAN: noise joins clusters through a strong edge, neighbour votes, or the template it
carries; and how much of its cluster's scaffold each member carries."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

from ..accel import fastops
from .labels import member_shingles, n_labels


def attach_noise(
    labels: NDArray[np.int64], i: NDArray[np.int64], j: NDArray[np.int64], sim: NDArray[np.float32], min_sim: float
) -> NDArray[np.int64]:
    """Give each noise node the cluster of its most similar clustered neighbour when that edge's similarity
    is at least ``min_sim`` (HDBSCAN leaves the thin edge of a dense template family as noise; one strong
    edge to a member is evidence enough). One pass, so attached nodes do not chain further."""
    if min_sim > 1.0 or len(i) == 0:
        return labels
    strong = sim >= min_sim
    # both directions of each edge, filtered before they are put together (the edge list is the day's
    # largest array: never copy it whole; one-byte lookups of the noise mask rather than of the labels)
    noise = labels < 0
    ni, nj = noise[i], noise[j]
    fwd, bwd = strong & ni & ~nj, strong & nj & ~ni
    del strong, ni, nj
    if not (fwd.any() or bwd.any()):
        return labels
    src, dst, s = (
        np.concatenate([i[fwd], j[bwd]]),
        np.concatenate([j[fwd], i[bwd]]),
        np.concatenate([sim[fwd], sim[bwd]]),
    )
    best = fastops.best_per_group(src, s, dst)  # per noise node: best similarity, ties to the lowest row
    out = labels.copy()
    out[src[best]] = labels[dst[best]]
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
    keep = sim >= min_sim
    i, j = i[keep], j[keep]
    del keep
    deg = np.bincount(i, minlength=len(labels)) + np.bincount(j, minlength=len(labels))
    # labels only move from noise to a cluster: an edge between two clustered nodes never votes
    noise = labels < 0
    touch = noise[i] | noise[j]
    i, j = i[touch], j[touch]
    del noise, touch
    out = labels.copy()
    width = int(out.max()) + 1  # cluster numbers never change
    for _ in range(rounds):
        # half-edges from a noise node to a clustered one, both directions, without doubling the edge list
        li, lj = out[i], out[j]
        fwd, bwd = (li < 0) & (lj >= 0), (lj < 0) & (li >= 0)
        if not (fwd.any() or bwd.any()):
            break
        src, lab = np.concatenate([i[fwd], j[bwd]]), np.concatenate([lj[fwd], li[bwd]])
        del li, lj, fwd, bwd
        code, votes = fastops.unique_counts(src * width + lab)
        node, cl = code // width, code % width
        best = fastops.best_per_group(node, votes, cl)
        node, cl, votes = node[best], cl[best], votes[best]
        good = (votes >= min_votes) & (votes >= min_share * deg[node])
        if not good.any():
            break
        out[node[good]] = cl[good]
    return out


def _cores(
    labels: NDArray[np.int64], sk_indptr: NDArray[np.int64], sk_hashes: NDArray[np.uint64], min_shingles: int
) -> tuple[csr_matrix, NDArray[np.float64], NDArray[np.uint64], NDArray[np.int64]]:
    """Each cluster's *core*: the skeleton shingles held by at least half its members (cores smaller than
    ``min_shingles`` are left empty). Returns (binary (k × core shingles) matrix — one empty column when no
    core is left —, core sizes, the sorted shingle hashes its columns stand for, the row of every skeleton
    entry).

    Counted per distinct (cluster, shingle) pair (:func:`~.labels.member_shingles`); "at least half" is the
    integer test 2·count ≥ size (a product with the reciprocal of the size rounds some exact halves below
    0.5)."""
    k = n_labels(labels)
    row_of = np.repeat(np.arange(len(labels), dtype=np.int64), np.diff(sk_indptr))
    c, h, count, size = member_shingles(labels, row_of, sk_hashes, k)
    keep = 2 * count.astype(np.int64) >= size[c]
    c, h = c[keep].astype(np.int64), h[keep]
    full = np.bincount(c, minlength=k) >= min_shingles
    c, h = c[full[c]], h[full[c]]
    uniq_h, col = fastops.unique_inverse(h)
    core = csr_matrix((np.ones(len(c)), (c, col.ravel())), shape=(k, max(len(uniq_h), 1)))
    return core, np.bincount(c, minlength=k).astype(np.float64), uniq_h.astype(np.uint64), row_of


def _held(
    rows_mask: NDArray[np.bool_],
    row_of: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    uniq_h: NDArray[np.uint64],
    core: csr_matrix,
    n: int,
) -> csr_matrix:
    """(rows × clusters) number of each cluster's core shingles that each selected row holds."""
    r, pos = _lookup(rows_mask, row_of, sk_hashes, uniq_h)
    x = csr_matrix((np.ones(len(r)), (r, pos)), shape=(n, core.shape[1]))
    return (x @ core.T).tocsr()


def _lookup(
    rows_mask: NDArray[np.bool_], row_of: NDArray[np.int64], sk_hashes: NDArray[np.uint64], uniq_h: NDArray[np.uint64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(row, column) of each skeleton entry of the selected rows whose shingle is a column of ``uniq_h``."""
    sel = rows_mask[row_of]
    h = sk_hashes[sel]
    pos = np.minimum(np.searchsorted(uniq_h, h), max(len(uniq_h) - 1, 0))
    hit = uniq_h[pos] == h if len(uniq_h) else np.zeros(len(h), bool)
    return row_of[sel][hit], pos[hit]


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
    # each member against its own cluster's core only (not the rows × clusters product)
    r, pos = _lookup(labels >= 0, row_of, sk_hashes, uniq_h)
    cnt = np.bincount(r, weights=np.asarray(core[labels[r], pos]).ravel(), minlength=len(labels))
    m = cnt > 0
    out[m] = cnt[m] / np.maximum(core_size[labels[m]], 1.0)
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
    k = n_labels(labels)
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
    best = fastops.best_per_group(r, s, c)  # per row: best share, ties to the lowest cluster
    out = labels.copy()
    out[r[best]] = c[best]
    return out
