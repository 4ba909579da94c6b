"""The one hash mixer of the project: the splitmix64 finaliser, on scalars (inside Numba code) and arrays.

Shingle hashes (``text.skeleton``), MinHash permutations (``accel.reference`` and ``kernels/minhash.cu``) and
LSH band keys (``graph.lsh``) all mix through it, so a hash is the same on every machine and on the GPU.
``kernels/minhash.cu`` carries the same constants; ``tests/graph/test_overlap.py`` keeps them in step.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray


@numba.njit(inline="always")
def mix64_scalar(x: np.uint64) -> np.uint64:
    """splitmix64 finaliser of one uint64 (for Numba code)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True)
def _mix_array(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = mix64_scalar(x[i])
    return out


def mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64 finaliser of every element (uint64 in, uint64 out)."""
    return _mix_array(np.ascontiguousarray(x, dtype=np.uint64))


def perm_seeds(num_perm: int, seed: int) -> NDArray[np.uint64]:
    """Per-permutation 64-bit MinHash seeds, derived from ``seed`` (same on every machine)."""
    base = np.arange(1, num_perm + 1, dtype=np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
    return mix64(base)
