"""Template overlap: MinHash signatures of skeletons and the overlap of every candidate pair.

The hot path (N·k pairs) runs in the CUDA kernels of ``kernels/`` on a GPU backend and in their Numba
twins (``reference.py``) on the CPU; both give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..accel import reference
from ..accel.backend import Backend
from ..config import SkeletonConfig
from ..text.skeleton import Skeletons


@dataclass(frozen=True, slots=True)
class Signatures:
    """``sig``: uint32 (n, num_perm) MinHash of each skeleton; ``sizes``: int32 (n,) skeleton sizes."""

    sig: NDArray[np.uint32]
    sizes: NDArray[np.int32]


def signatures(sk: Skeletons, cfg: SkeletonConfig, seed: int, backend: Backend) -> Signatures:
    """MinHash signatures of the skeletons (seeded: the same seed gives the same signatures)."""
    seeds = reference.perm_seeds(cfg.num_perm, seed)
    if backend is Backend.GPU:
        from ..accel import kernels

        sig = kernels.minhash_signatures(sk.indptr, sk.hashes, seeds).get()
    else:
        sig = reference.minhash_signatures(sk.indptr, sk.hashes, seeds)
    return Signatures(sig=sig, sizes=sk.sizes)


def pair_overlap(sigs: Signatures, i: NDArray[np.int64], j: NDArray[np.int64], backend: Backend) -> NDArray[np.float32]:
    """float32 (m, 2): estimated Jaccard and containment of the skeletons of pairs (i, j)."""
    if backend is Backend.GPU:
        from ..accel import kernels

        return kernels.skeleton_overlap(sigs.sig, sigs.sizes, i, j).get()
    return reference.skeleton_overlap(sigs.sig, sigs.sizes, i, j)
