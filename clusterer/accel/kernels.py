"""CuPy launch wrappers for the CUDA kernels in ``kernels/*.cu`` (GPU only).

Each ``.cu`` file is read and compiled once per process (``cupy.RawModule``, NVRTC). Every function here
has a twin with the same name and arguments in ``reference.py``; the GPU versions take and return CuPy
arrays. CuPy is imported inside functions so this module imports anywhere.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

KERNEL_FILES = ("minhash.cu", "overlap.cu")


def kernel_dir() -> Path:
    """Folder holding the ``.cu`` sources: ``kernels/`` at the repository root, shipped in the wheel as
    ``clusterer/accel/cuda_src/`` (a link to it in the source tree)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "cuda_src", here.parent.parent / "kernels"):
        if (cand / KERNEL_FILES[0]).is_file():
            return cand
    raise FileNotFoundError(f"CUDA sources {KERNEL_FILES} not found next to the clusterer package")


@functools.cache
def _module(name: str) -> Any:
    import cupy

    src = (kernel_dir() / name).read_text(encoding="utf-8")
    return cupy.RawModule(code=src, options=("-std=c++14",))


def compile_all() -> dict[str, str]:
    """Compile every kernel file; returns ``{file: 'ok' | error text}`` (used by ``clusterer doctor``)."""
    status = {}
    for name in KERNEL_FILES:
        try:
            mod = _module(name)
            mod.compile()
            status[name] = "ok"
        except Exception as err:  # noqa: BLE001 - report any compiler failure as text
            status[name] = f"failed: {err}"
    return status


def minhash_signatures(indptr: Any, hashes: Any, seeds: Any) -> Any:
    """GPU twin of :func:`clusterer.reference.minhash_signatures`; returns cupy uint32 (n, len(seeds))."""
    import cupy as cp

    indptr = cp.ascontiguousarray(cp.asarray(indptr, dtype=cp.int64))
    hashes = cp.ascontiguousarray(cp.asarray(hashes, dtype=cp.uint64))
    seeds = cp.ascontiguousarray(cp.asarray(seeds, dtype=cp.uint64))
    n = int(indptr.shape[0]) - 1
    num_perm = int(seeds.shape[0])
    assert 1 <= num_perm <= 1024, "num_perm must be within [1, 1024]"
    out = cp.empty((max(n, 0), num_perm), dtype=cp.uint32)
    if n <= 0:
        return out
    per_thread = (num_perm + 3) // 4  # each thread keeps 4 permutations in registers
    threads = min(256, max(32, (per_thread + 31) // 32 * 32))
    kern = _module("minhash.cu").get_function("minhash_signatures")
    kern((n,), (threads,), (indptr, hashes, seeds, cp.int32(num_perm), cp.int64(n), out))
    return out


def skeleton_overlap(sig: Any, sizes: Any, i: Any, j: Any) -> Any:
    """GPU twin of :func:`clusterer.reference.skeleton_overlap`; returns cupy float32 (m, 2)."""
    import cupy as cp

    sig = cp.ascontiguousarray(cp.asarray(sig, dtype=cp.uint32))
    sizes = cp.ascontiguousarray(cp.asarray(sizes, dtype=cp.int32))
    i = cp.ascontiguousarray(cp.asarray(i, dtype=cp.int64))
    j = cp.ascontiguousarray(cp.asarray(j, dtype=cp.int64))
    assert sig.ndim == 2 and i.shape == j.shape
    m = int(i.shape[0])
    out = cp.zeros((m, 2), dtype=cp.float32)
    if m == 0:
        return out
    threads = 256
    blocks = -(-m * 32 // threads)
    kern = _module("overlap.cu").get_function("skeleton_overlap")
    kern((blocks,), (threads,), (sig, sizes, i, j, cp.int32(sig.shape[1]), cp.int64(m), out))
    return out
