"""Numba / NumPy twins of every function in ``kernels.py`` (same names, same arguments, NumPy arrays).

They are the CPU path of the pipeline and the ground truth for the GPU kernels: a ``gpu``-marked test
checks that both give the same numbers. The hash mixer is :mod:`clusterer.accel.hashing`, bit-identical to
``kernels/minhash.cu``.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from .hashing import mix64_scalar as _mix64

EMPTY = np.uint32(0xFFFFFFFF)  # signature value of an empty skeleton


@numba.njit(parallel=True, cache=True)
def _minhash(indptr, hashes, seeds, out):
    n = indptr.shape[0] - 1
    p_count = seeds.shape[0]
    for r in numba.prange(n):
        for p in range(p_count):
            out[r, p] = 0xFFFFFFFF
        for s in range(indptr[r], indptr[r + 1]):
            h = hashes[s]
            for p in range(p_count):
                v = np.uint32(_mix64(h ^ seeds[p]) >> np.uint64(32))
                if v < out[r, p]:
                    out[r, p] = v


def minhash_signatures(
    indptr: NDArray[np.int64], hashes: NDArray[np.uint64], seeds: NDArray[np.uint64]
) -> NDArray[np.uint32]:
    """MinHash signature of each row's set of 64-bit hashes (CSR ``indptr`` / ``hashes``).

    Returns uint32 (n_rows, len(seeds)); value p of row r = min over its hashes h of the top 32 bits of
    splitmix64(h ^ seeds[p]); an empty row is all 0xFFFFFFFF.
    """
    n = len(indptr) - 1
    out = np.empty((n, len(seeds)), dtype=np.uint32)
    if n:
        _minhash(indptr.astype(np.int64), hashes.astype(np.uint64), seeds.astype(np.uint64), out)
    return out


@numba.njit(parallel=True, cache=True)
def _overlap(sig, sizes, i, j, jac, con):
    p_count = sig.shape[1]
    for e in numba.prange(i.shape[0]):
        a = i[e]
        b = j[e]
        na = sizes[a]
        nb = sizes[b]
        if na == 0 or nb == 0:
            jac[e] = 0.0
            con[e] = 0.0
            continue
        same = 0
        for p in range(p_count):
            if sig[a, p] == sig[b, p]:
                same += 1
        jv = same / p_count
        inter = jv * (na + nb) / (1.0 + jv)
        cv = inter / min(na, nb)
        jac[e] = jv
        con[e] = min(cv, 1.0)


def skeleton_overlap(
    sig: NDArray[np.uint32], sizes: NDArray[np.int32], i: NDArray[np.int64], j: NDArray[np.int64]
) -> NDArray[np.float32]:
    """Estimated Jaccard and containment of the skeletons of each candidate pair.

    ``sig``: uint32 (n, P) MinHash signatures; ``sizes``: int32 (n,) skeleton set sizes; ``i``, ``j``: int64
    (m,) row pairs. Returns float32 (m, 2): column 0 = Jaccard (share of equal signature values),
    column 1 = containment |A∩B| / min(|A|, |B|) with |A∩B| = J (|A| + |B|) / (1 + J). Pairs with an
    empty skeleton score 0.
    """
    m = len(i)
    jac = np.empty(m, dtype=np.float32)
    con = np.empty(m, dtype=np.float32)
    if m:
        _overlap(np.ascontiguousarray(sig), sizes.astype(np.int32), i.astype(np.int64), j.astype(np.int64), jac, con)
    return np.stack([jac, con], axis=1) if m else np.zeros((0, 2), np.float32)
