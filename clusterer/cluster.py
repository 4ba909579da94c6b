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
from scipy.sparse import coo_matrix, csgraph, csr_matrix, triu

from . import fastops
from .config import ClusterConfig
from .embed import RowVectors
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


def _cluster_matrix(labels: NDArray[np.int64], cols: NDArray[np.int64], n_cols: int, k: int) -> csr_matrix:
    """Sparse (clusters × cols) count matrix from per-row cluster labels and column ids."""
    m = labels >= 0
    return coo_matrix((np.ones(int(m.sum())), (labels[m], cols[m])), shape=(k, n_cols)).tocsr()


def _upper(m: csr_matrix) -> csr_matrix:
    """Strict upper triangle of a square sparse matrix, as CSR with sorted indices."""
    out = triu(m, 1).tocsr()
    out.sum_duplicates()
    out.sort_indices()
    return out


def _at(m: csr_matrix, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.float64]:
    """Values m[a[t], b[t]] of a sparse matrix (0 where absent), as float64."""
    if len(a) == 0:
        return np.zeros(0)
    return np.asarray(m[a, b], dtype=np.float64).ravel()


def _rows_dot(
    x: csr_matrix, y: csr_matrix, a: NDArray[np.int64], b: NDArray[np.int64], chunk: int = 200_000
) -> NDArray[np.float64]:
    """Dot products of row x[a[t]] with row y[b[t]] for every pair t, in chunks of pairs."""
    out = np.zeros(len(a))
    for s in range(0, len(a), chunk):
        sl = slice(s, s + chunk)
        out[sl] = np.asarray(x[a[sl]].multiply(y[b[sl]]).sum(axis=1)).ravel()
    return out


def _pair_dot(v: NDArray[np.float32], a: NDArray[np.int64], b: NDArray[np.int64], chunk: int = 1 << 20):
    out = np.zeros(len(a))
    for s in range(0, len(a), chunk):
        sl = slice(s, s + chunk)
        out[sl] = np.einsum("ij,ij->i", v[a[sl]].astype(np.float64), v[b[sl]].astype(np.float64))
    return out


def merge_families(
    labels: NDArray[np.int64],
    accounts: NDArray[np.int64],
    emb: NDArray[np.float32] | RowVectors,
    sk_indptr: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    slot_indptr: NDArray[np.int64],
    slot_tokens: NDArray[np.uint32],
    cfg: ClusterConfig,
    orgs: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]:
    """Second-level grouping: join clusters that are fragments of one template family.

    HDBSCAN splits a campaign along its scaffold variants (re-worded or re-ordered instructions). Two
    clusters A, B are joined when their mean embedding directions agree (cosine ≥ ``merge_min_cos``) and
    either they share accounts (``account overlap`` ≥ ``merge_min_accounts``: the smaller of the shares of
    A's prompts sent by accounts seen in B and of B's prompts sent by accounts seen in A) or their cluster
    skeletons overlap (containment ≥ ``merge_min_skeleton`` over at least 3 shared shingles, the larger
    skeleton at most ``merge_max_skeleton_ratio`` times the smaller; a cluster's skeleton = shingles in at
    least a fifth of its members). Only accounts shared by at least
    ``merge_min_shared_accounts`` distinct accounts count, so one heavy user does not join clusters.
    Fragments whose scaffolds share no words at all (a template translated into another language) are
    joined when nearly the same accounts send both (overlap ≥ ``merge_strong_accounts``) and their payloads
    come from one pool (cosine of the clusters' payload-word profiles ≥ ``merge_min_payload``); so are
    fragments sent from at least ``merge_min_shared_orgs`` of the same multi-account organisations (shell
    organisations an operator registers accounts under, sending at least ``merge_min_org_share`` of each
    fragment's prompts) over one payload pool, when ``orgs`` (an
    organisation code per row, −1 unknown) is given. Joins are transitive (connected components); IDs are
    renumbered by first row. Accounts and skeleton shingles found in more than max(64, K / 200) clusters are
    left out of these counts: heavy ordinary users and generic wording, whose co-occurrence would be
    quadratic in their spread.

    ``labels``: int64 (n,), ``accounts``: int64 (n,) account codes, ``emb``: float32 (n, d) unit rows,
    ``sk_indptr`` / ``sk_hashes``: per-row skeletons (CSR). Returns new int64 (n,) labels.
    """
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    if k < 2 or not cfg.merge:
        return labels
    # Every test below needs shared accounts, shared skeleton shingles or shared organisations, so the
    # candidate cluster pairs are the non-zeros of three sparse co-occurrence products: no K × K array.
    member = labels >= 0
    size = np.bincount(labels[member], minlength=k).astype(np.float64)
    spread_cap = max(64, k // 200)  # clusters an account or skeleton shingle may span and still count
    # account overlap
    acc_codes = fastops.unique_inverse(accounts)[1]
    ca = _cluster_matrix(labels, acc_codes, int(acc_codes.max()) + 1, k).tocsc()
    # an account in very many clusters is a heavy ordinary user, not a family's sender pool; counting it
    # would also make the co-occurrence product quadratic in its cluster count
    ca = ca[:, np.flatnonzero(np.diff(ca.indptr) <= spread_cap)].tocsr()
    present = ca.copy()
    present.data[:] = 1.0
    shared_acc = _upper(present @ present.T)  # distinct accounts seen in both
    cand = [shared_acc.multiply(shared_acc >= cfg.merge_min_shared_accounts)]
    # cluster skeletons: shingles in at least a fifth of a cluster's members
    row_of = np.repeat(np.arange(len(labels)), np.diff(sk_indptr))
    codes = fastops.unique_inverse(sk_hashes)[1]
    cs = _cluster_matrix(labels[row_of], codes, int(codes.max()) + 1 if len(codes) else 1, k).tocoo()
    keep = cs.data >= np.maximum(0.2 * size, 2.0)[cs.row]
    cs = coo_matrix((np.ones(int(keep.sum())), (cs.row[keep], cs.col[keep])), shape=cs.shape).tocsc()
    # a shingle in the skeletons of very many clusters is generic wording, not a family's scaffold
    cs = cs[:, np.flatnonzero(np.diff(cs.indptr) <= spread_cap)].tocsr()
    n_sk = np.asarray(cs.sum(axis=1)).ravel()
    inter = _upper(cs @ cs.T)
    cand.append(inter.multiply(inter >= 3))
    shared_orgs = None
    if orgs is not None and (orgs >= 0).any():
        # organisations with several accounts; one-account orgs say nothing beyond the account itself
        known = orgs >= 0
        op = np.unique(np.stack([orgs[known], accounts[known]], axis=1), axis=0)
        multi = np.flatnonzero(np.bincount(op[:, 0]) >= 2)
        use = member & known & np.isin(orgs, multi)
        if use.any():
            org_counts = _cluster_matrix(np.where(use, labels, -1), np.maximum(orgs, 0), int(orgs.max()) + 1, k)
            co = org_counts.copy()
            co.data[:] = 1.0
            shared_orgs = _upper(co @ co.T)
            cand.append(shared_orgs.multiply(shared_orgs >= cfg.merge_min_shared_orgs))
    pairs = sum(cand[1:], cand[0]).tocoo()
    a_idx, b_idx = pairs.row.astype(np.int64), pairs.col.astype(np.int64)
    if len(a_idx) == 0:
        return labels
    centroid = centroids(labels, emb, k)
    cos = _pair_dot(centroid, a_idx, b_idx)
    # [A, B] = share of A's prompts sent by accounts seen in B; overlap = the smaller of the two directions
    n_shared = _at(shared_acc, a_idx, b_idx)
    ab = _rows_dot(ca, present, a_idx, b_idx) / size[a_idx]
    ba = _rows_dot(ca, present, b_idx, a_idx) / size[b_idx]
    acct = np.where(n_shared >= cfg.merge_min_shared_accounts, np.minimum(ab, ba), 0.0)
    # payload-word profiles (tf, l2-normalised) of each cluster
    slot_row = np.repeat(np.arange(len(labels)), np.diff(slot_indptr))
    cp = _cluster_matrix(labels[slot_row], slot_tokens.astype(np.int64), 1 << 20, k)
    norms = np.sqrt(np.asarray(cp.multiply(cp).sum(axis=1)).ravel())
    payload = _rows_dot(cp, cp, a_idx, b_idx) / np.maximum(norms[a_idx] * norms[b_idx], 1e-12)
    strong = (acct >= cfg.merge_strong_accounts) & (payload >= cfg.merge_min_payload)
    if shared_orgs is not None:
        # the shared organisations must send a real part of both clusters' traffic, not a stray prompt
        org_ab = _rows_dot(org_counts, co, a_idx, b_idx) / size[a_idx]
        org_ba = _rows_dot(org_counts, co, b_idx, a_idx) / size[b_idx]
        strong |= (
            (_at(shared_orgs, a_idx, b_idx) >= cfg.merge_min_shared_orgs)
            & (np.minimum(org_ab, org_ba) >= cfg.merge_min_org_share)
            & (payload >= cfg.merge_min_payload)
        )
    common = _at(inter, a_idx, b_idx)
    small = np.maximum(np.minimum(n_sk[a_idx], n_sk[b_idx]), 1.0)
    skel = np.where(common >= 3, common / small, 0.0)
    # a skeleton that holds another's and much more is a cluster glued by a shared payload, mixing scaffolds:
    # joining through it would bridge unrelated families
    skel[np.maximum(n_sk[a_idx], n_sk[b_idx]) > cfg.merge_max_skeleton_ratio * small] = 0.0
    close = cos >= cfg.merge_min_cos
    join = (close & ((acct >= cfg.merge_min_accounts) | (skel >= cfg.merge_min_skeleton))) | strong
    if not join.any():
        return labels
    g = coo_matrix((np.ones(int(join.sum())), (a_idx[join], b_idx[join])), shape=(k, k))
    _, comp = csgraph.connected_components(g, directed=False)
    merged = np.where(member, comp[np.maximum(labels, 0)], -1)
    ids = np.unique(merged[member])
    first = _first_rows(merged, ids)
    order = ids[np.argsort(first, kind="stable")]
    remap = np.full(int(ids.max()) + 1, -1, np.int64)
    remap[order] = np.arange(len(order))
    return np.where(member, remap[np.maximum(merged, 0)], -1)


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
