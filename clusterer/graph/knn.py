"""kNN graph: k nearest neighbours of every prompt by inner product of unit vectors.

The search runs over the day's *distinct* vectors (templated prompts share their scaffold view, re-sent
prompts their text) and is expanded to rows afterwards: copies of one vector are each other's first
neighbours. Index by size (``graph.index = auto``): exact FAISS ``IndexFlatIP`` below
``graph.approx_min_rows`` distinct vectors; above it HNSW on the CPU, IVF-Flat with faiss-gpu. A GPU
without faiss-gpu runs an exact torch brute-force search in blocks (so the GPU path does not need it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..accel.backend import Backend, faiss_gpu_count
from ..config import GraphConfig

_BLOCK = 8192  # queries per block ...
# ... against this many vectors at a time: a (block, db block) similarity tile of 2 GB in float16 (4 GB as the
# float32 topk reads it), whatever the day's size (a (block, n) tile at 10M vectors would be 164 GB)
_DB_BLOCK = 1 << 17
# extra neighbours a search returns so that a tie at the k-th place is settled by row, not by the order the
# library's heap kept (the Ray engine's sharded search must keep the neighbours the local search keeps)
TIE_SLACK = 8


@dataclass(frozen=True, slots=True)
class Knn:
    """``idx``: int64 (n, k) neighbour rows (-1 where fewer than k exist), self excluded;
    ``sim``: float32 (n, k) cosine similarity, descending along each row."""

    idx: NDArray[np.int64]
    sim: NDArray[np.float32]


def _drop_self(idx: NDArray[np.int64], sim: NDArray[np.float32], k: int) -> Knn:
    """Remove each row's own index from a (n, k+1) result, keeping k columns in order."""
    n = idx.shape[0]
    rows = np.arange(n)[:, None]
    is_self = idx == rows
    # rows whose self did not come back (exact duplicates tie at 1.0) drop their last column instead
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    keep = ~is_self
    out_idx = idx[keep].reshape(n, k)
    out_sim = sim[keep].reshape(n, k)
    return Knn(idx=out_idx, sim=out_sim)


def canonical_topk(
    idx: NDArray[np.int64], sim: NDArray[np.float32], kk: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The ``kk`` best of each row's candidates (``idx`` -1 = none) by similarity, then by row: one order for
    equal similarities whatever the search library, its version, or the way the vectors were sharded.
    Rows whose candidates hold no tie (most, for dense embeddings) are only cut; the others are reordered in
    the given arrays (callers pass a search's own result)."""
    idx = np.asarray(idx, np.int64)
    sim = np.asarray(sim, np.float32)
    valid = idx >= 0
    key = np.where(valid, sim, -np.inf)
    tied = ((key[:, 1:] == key[:, :-1]) & valid[:, 1:]).any(axis=1) | (np.diff(key, axis=1) > 0).any(axis=1)
    rows = np.flatnonzero(tied)
    if len(rows):
        sub = np.where(valid[rows], idx[rows], np.iinfo(np.int64).max)
        order = np.lexsort((sub, -key[rows].astype(np.float64)), axis=1)
        r = rows[:, None]
        idx[rows] = idx[r, order]
        sim[rows] = sim[r, order]
    return np.ascontiguousarray(idx[:, :kk]), np.ascontiguousarray(sim[:, :kk])


def index_kind(n: int, cfg: GraphConfig, gpu: bool = False) -> str:
    """The FAISS index ``n`` distinct vectors get: exact below ``cfg.approx_min_rows``; above it HNSW on
    the CPU and IVF-Flat on a GPU (faiss has no GPU HNSW)."""
    if cfg.index != "auto":
        return cfg.index
    if n < cfg.approx_min_rows:
        return "flat"
    return "ivf" if gpu else "hnsw"


def _faiss_search(
    emb: NDArray[np.float32], kk: int, gpu: bool, cfg: GraphConfig
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    import faiss

    n, d = emb.shape
    kind = index_kind(n, cfg, gpu)
    want = min(n, kk + TIE_SLACK)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg.hnsw_ef_construction
        index.hnsw.efSearch = max(cfg.hnsw_ef_search, kk)
        index.add(emb)
    elif kind == "ivf" and n >= 1000:
        nlist = max(16, int(4 * np.sqrt(n)))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = 1234  # k-means training is seeded: same input, same graph
        if gpu:
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        index.train(emb[:: max(1, n // (nlist * 64))])
        index.add(emb)
        faiss.ParameterSpace().set_index_parameter(index, "nprobe", min(cfg.ivf_nprobe, nlist))
    else:
        index = faiss.IndexFlatIP(d)
        if gpu:
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        index.add(emb)
    sim, idx = index.search(emb, want)
    return canonical_topk(idx, sim, kk)


def _torch_search(
    emb: NDArray[np.float32], kk: int, device: str = "cuda"
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Exact inner-product top ``kk`` (self included) by torch: blocks of ``_BLOCK`` queries, each against
    ``_DB_BLOCK`` vectors at a time, whose top candidates are merged: in float16 on a GPU (tensor cores),
    float32 elsewhere (``device`` "cpu": the same blocking and tie order, testable without a GPU). The
    candidates' similarities are then computed in float32."""
    import torch

    n = len(emb)
    x = torch.from_numpy(emb).to(device, dtype=torch.float16 if device == "cuda" else torch.float32)
    want = min(n, kk + TIE_SLACK)
    idx = np.empty((n, want), dtype=np.int64)
    sim = np.empty((n, want), dtype=np.float32)
    for s in range(0, n, _BLOCK):
        vals, inds = [], []
        for t in range(0, n, _DB_BLOCK):
            tile = (x[s : s + _BLOCK] @ x[t : t + _DB_BLOCK].T).float()
            val, ind = torch.topk(tile, min(want, tile.shape[1]), dim=1)
            vals.append(val)
            inds.append(ind + t)
            del tile
        val, ind = torch.cat(vals, dim=1), torch.cat(inds, dim=1)
        if len(vals) > 1:  # each block's candidates: the best ``want`` of them all
            val, pos = torch.topk(val, want, dim=1)
            ind = torch.gather(ind, 1, pos)
        found = ind.cpu().numpy()
        idx[s : s + _BLOCK] = found
        # the candidates' similarities again in float32 on the host: float16 rounds them to steps of about
        # 5e-4, which would make ties of neighbours that differ (settled by row) and edge weights the CPU run
        # does not have
        sim[s : s + _BLOCK] = (emb[found] @ emb[s : s + _BLOCK, :, None])[..., 0]
    return canonical_topk(idx, sim, kk)


def knn_graph(
    emb: NDArray[np.float32], cfg: GraphConfig, backend: Backend, of_row: NDArray[np.int64] | None = None
) -> Knn:
    """k nearest neighbours of every row of ``emb`` (float32 (n, d), unit rows), with the index
    :func:`index_kind` picks; on a GPU without faiss-gpu, exact torch brute force.

    With ``of_row`` (int64 (rows,)), ``emb`` holds distinct vectors and row r's vector is
    ``emb[of_row[r]]``: the search runs over ``emb`` and the result is per row (see :func:`expand_knn`).

    Returns a :class:`Knn` with ``min(k, n - 1)`` real neighbours per row, padded with -1 / -inf to k.
    """
    if of_row is not None:
        return expand_knn(knn_graph(emb, cfg, backend), of_row, cfg.k)
    n = emb.shape[0]
    k = cfg.k
    if n <= 1:
        return Knn(idx=np.full((n, k), -1, np.int64), sim=np.full((n, k), -np.inf, np.float32))
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    kk = min(k + 1, n)
    if backend is Backend.GPU and faiss_gpu_count() == 0:
        idx, sim = _torch_search(emb, kk)
    else:
        idx, sim = _faiss_search(emb, kk, backend is Backend.GPU, cfg)
    return pad_knn(idx, sim, kk, k)


def pad_knn(idx: NDArray[np.int64], sim: NDArray[np.float32], kk: int, k: int) -> Knn:
    """A search's (n, kk) result, self included, as :class:`Knn`: each row's own index dropped, padded with -1
    / -inf to ``k`` columns."""
    knn = _drop_self(idx, sim, kk - 1)
    if kk - 1 < k:
        pad = k - (kk - 1)
        knn = Knn(
            idx=np.pad(knn.idx, ((0, 0), (0, pad)), constant_values=-1),
            sim=np.pad(knn.sim, ((0, 0), (0, pad)), constant_values=-np.inf),
        )
    return knn


def expand_knn(knn_u: Knn, of_row: NDArray[np.int64], k: int) -> Knn:
    """Row-level kNN from the kNN of distinct vectors (``of_row[r]``: row r's vector).

    Exact search over all rows returns, up to the order of ties, a row's other copies first (similarity
    1), then the copies of its nearest other vector, then of the next, until k are found. This builds
    that list without searching the copies. Which copies of a vector a row gets is taken cyclically from
    the row's place among its own copies, so a group of g copies is a ring of k-neighbour links rather
    than a star, and in-degree is spread over a neighbour's copies.
    """
    n = len(of_row)
    if n == 0:
        return Knn(idx=np.zeros((0, k), np.int64), sim=np.zeros((0, k), np.float32))
    order = np.argsort(of_row, kind="stable")  # rows grouped by vector, by row within a group
    n_vec, ku = knn_u.idx.shape
    size = np.bincount(of_row, minlength=n_vec)
    start = np.zeros(n_vec + 1, np.int64)
    np.cumsum(size, out=start[1:])
    pos = np.empty(n, np.int64)
    pos[order] = np.arange(n) - start[of_row[order]]
    # per distinct vector: slot s of its neighbour list = copy c of neighbour t
    cnt = np.where(knn_u.idx >= 0, np.minimum(size[np.maximum(knn_u.idx, 0)], k), 0)
    cum = np.cumsum(cnt, axis=1)
    slot_t = np.zeros((n_vec, k), np.int64)
    for s_ in range(k):
        slot_t[:, s_] = (cum <= s_).sum(axis=1)
    filled = slot_t < ku
    slot_t = np.minimum(slot_t, ku - 1)
    before = np.take_along_axis(cum - cnt, slot_t, 1)
    slot_c = np.arange(k)[None, :] - before
    slot_v = np.where(filled, np.take_along_axis(knn_u.idx, slot_t, 1), -1)
    slot_sim = np.where(filled, np.take_along_axis(knn_u.sim, slot_t, 1), -np.inf).astype(np.float32)

    u = of_row
    g = size[u]
    own = np.minimum(g - 1, k)
    idx = np.full((n, k), -1, np.int64)
    sim = np.full((n, k), -np.inf, np.float32)
    for j in range(k):
        mine = j < own
        idx[mine, j] = order[start[u[mine]] + (pos[mine] + 1 + j) % g[mine]]
        sim[mine, j] = 1.0
        other = np.flatnonzero(~mine)
        s_ = j - own[other]
        v = slot_v[u[other], s_]
        ok = v >= 0
        other, s_, v = other[ok], s_[ok], v[ok]
        idx[other, j] = order[start[v] + (pos[other] + slot_c[u[other], s_]) % size[v]]
        sim[other, j] = slot_sim[u[other], s_]
    return Knn(idx=idx, sim=sim)
