"""kNN graph: k nearest neighbours of every prompt by inner product of unit vectors.

CPU: exact FAISS ``IndexFlatIP``. GPU: the FAISS GPU index when FAISS was built with GPU support,
otherwise an exact torch brute-force search in blocks (so the GPU path does not need faiss-gpu).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .backend import Backend, faiss_gpu_count
from .config import GraphConfig

_BLOCK = 8192  # queries per block: bounds the (block, n) similarity tile on the GPU


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


def _faiss_search(emb: NDArray[np.float32], kk: int, gpu: bool) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    import faiss

    index = faiss.IndexFlatIP(emb.shape[1])
    if gpu:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(emb)
    sim, idx = index.search(emb, kk)
    return idx.astype(np.int64), sim.astype(np.float32)


def _torch_search(emb: NDArray[np.float32], kk: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    import torch

    x = torch.from_numpy(emb).to("cuda", dtype=torch.float16)
    idx = np.empty((len(emb), kk), dtype=np.int64)
    sim = np.empty((len(emb), kk), dtype=np.float32)
    for s in range(0, len(emb), _BLOCK):
        tile = x[s : s + _BLOCK] @ x.T
        val, ind = torch.topk(tile.float(), kk, dim=1)
        idx[s : s + _BLOCK] = ind.cpu().numpy()
        sim[s : s + _BLOCK] = val.cpu().numpy()
    return idx, sim


def knn_graph(emb: NDArray[np.float32], cfg: GraphConfig, backend: Backend) -> Knn:
    """Exact k nearest neighbours of every row of ``emb`` (float32 (n, d), unit rows).

    Returns a :class:`Knn` with ``min(k, n - 1)`` real neighbours per row, padded with -1 / -inf to k.
    """
    n = emb.shape[0]
    k = cfg.k
    if n <= 1:
        return Knn(idx=np.full((n, k), -1, np.int64), sim=np.full((n, k), -np.inf, np.float32))
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    kk = min(k + 1, n)
    if backend is Backend.GPU and faiss_gpu_count() == 0:
        idx, sim = _torch_search(emb, kk)
    else:
        idx, sim = _faiss_search(emb, kk, gpu=backend is Backend.GPU)
    knn = _drop_self(idx, sim, kk - 1)
    if kk - 1 < k:
        pad = k - (kk - 1)
        knn = Knn(
            idx=np.pad(knn.idx, ((0, 0), (0, pad)), constant_values=-1),
            sim=np.pad(knn.sim, ((0, 0), (0, pad)), constant_values=-np.inf),
        )
    return knn
