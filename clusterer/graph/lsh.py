"""MinHash-LSH over skeletons: signatures, bucket linking, and the overlap of every candidate pair.

Signatures and the pairwise overlap (the hot path, N·k pairs) run in the CUDA kernels of ``kernels/`` on a GPU
backend and in their Numba twins (``accel.reference``) on the CPU; both give the same numbers. Band keys and
the per-band shuffle mix through :mod:`clusterer.accel.hashing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..accel import fastops, reference
from ..accel.backend import Backend, kernels_on_gpu
from ..accel.hashing import mix64 as _mix
from ..accel.hashing import perm_seeds
from ..config import GraphConfig, SkeletonConfig
from ..text.skeleton import Skeletons
from .edges import Pairs, pairs_of_codes


@dataclass(frozen=True, slots=True)
class Signatures:
    """``sig``: uint32 (n, num_perm) MinHash of each skeleton; ``sizes``: int32 (n,) skeleton sizes."""

    sig: NDArray[np.uint32]
    sizes: NDArray[np.int32]


def signatures(sk: Skeletons, cfg: SkeletonConfig, seed: int, backend: Backend) -> Signatures:
    """MinHash signatures of the skeletons (seeded: the same seed gives the same signatures)."""
    seeds = perm_seeds(cfg.num_perm, seed)
    if kernels_on_gpu(backend):
        from ..accel import kernels

        sig = kernels.minhash_signatures(sk.indptr, sk.hashes, seeds).get()
    else:
        sig = reference.minhash_signatures(sk.indptr, sk.hashes, seeds)
    return Signatures(sig=sig, sizes=sk.sizes)


def pair_overlap(sigs: Signatures, i: NDArray[np.int64], j: NDArray[np.int64], backend: Backend) -> NDArray[np.float32]:
    """float32 (m, 2): estimated Jaccard and containment of the skeletons of pairs (i, j)."""
    if kernels_on_gpu(backend):
        from ..accel import kernels

        return kernels.skeleton_overlap(sigs.sig, sigs.sizes, i, j).get()
    return reference.skeleton_overlap(sigs.sig, sigs.sizes, i, j)


def band_keys(sig: NDArray[np.uint32], rows: NDArray[np.int64], b: int, r: int) -> NDArray[np.uint64]:
    """Bucket key of ``rows`` in band ``b`` (signature columns ``b·r`` to ``(b+1)·r``)."""
    key = np.full(len(rows), np.uint64(b + 1))
    for c in range(b * r, (b + 1) * r):
        key = _mix(key * np.uint64(0x9E3779B97F4A7C15) + sig[rows, c].astype(np.uint64))
    return key


def link_band(
    sig: NDArray[np.uint32], rows: NDArray[np.int64], b: int, r: int, links: int, n: int
) -> NDArray[np.int64]:
    """Pair codes (``i·n + j``, i < j) of one band: each bucket's members in a per-band pseudo-random order,
    each linked to its next ``links`` bucket-mates (may repeat codes)."""
    key = band_keys(sig, rows, b, r)
    shuffle = _mix(rows.astype(np.uint64) ^ np.uint64(((b + 1) * 0x632BE59BD9B4E019) % 2**64))
    order = fastops.lexsort(shuffle, key)
    k_o, r_o = key[order], rows[order]
    del key, shuffle, order
    codes = []
    for step in range(1, links + 1):
        same = k_o[step:] == k_o[:-step]
        a, c_ = r_o[:-step][same], r_o[step:][same]
        codes.append(np.minimum(a, c_) * n + np.maximum(a, c_))
    return np.concatenate(codes) if codes else np.zeros(0, np.int64)


def lsh_rows(sizes: NDArray[np.int32]) -> NDArray[np.int64]:
    """The rows that take part in LSH: those with a non-empty skeleton."""
    return np.flatnonzero(sizes > 0).astype(np.int64)


def lsh_pairs(sig: NDArray[np.uint32], sizes: NDArray[np.int32], cfg: GraphConfig) -> Pairs:
    """Candidate pairs from MinHash-LSH bands of skeleton signatures, with memory O(n · bands).

    Rows whose band values agree share a bucket. A bucket of any size links each member to the next
    ``lsh_links`` members in a per-band pseudo-random order (:func:`link_band`), so a template bucket of
    100,000 prompts adds 100,000 · lsh_links pairs per band rather than 10^10; over the bands each member
    meets different bucket-mates. Rows with an empty skeleton take no part.
    """
    n, p = sig.shape
    rows = lsh_rows(sizes)
    if len(rows) < 2 or cfg.lsh_bands == 0:
        return Pairs(i=np.zeros(0, np.int64), j=np.zeros(0, np.int64))
    r = p // cfg.lsh_bands
    codes: list[NDArray[np.int64]] = []
    held = folded = 0
    for b in range(cfg.lsh_bands):
        codes.append(link_band(sig, rows, b, r, cfg.lsh_links, n))
        held += len(codes[-1])
        if held - folded > max(folded, 4 * len(rows) * cfg.lsh_links):  # fold found pairs (amortised)
            codes = [fastops.unique(np.concatenate(codes))]
            held = folded = len(codes[0])
    return pairs_of_codes(fastops.unique(np.concatenate(codes)), n)
