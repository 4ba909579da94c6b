"""Pairwise skeleton-overlap throughput: CUDA kernel (GPU) and Numba reference (CPU) against a naive
NumPy baseline measured in the same run. One JSON line per case.

    python bench/bench_overlap.py [--pairs 1000000 10000000] [--rows 200000] [--num-perm 128]

Every path is checked against ``reference.skeleton_overlap`` on the first 100,000 pairs before it is
timed; timings are medians of 3 runs after a warm-up (the first call compiles). On a GPU the kernel's
effective bandwidth (signature bytes read + output written) is printed against the card's peak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

import numpy as np

from clusterer.accel import reference
from clusterer.accel.backend import gpu_count
from clusterer.synth import overlap_case


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def naive_numpy(sig, sizes, i, j, chunk=250_000):
    out = np.empty((len(i), 2), np.float32)
    for s in range(0, len(i), chunk):
        a, b = i[s : s + chunk], j[s : s + chunk]
        jac = (sig[a] == sig[b]).mean(axis=1)
        na, nb = sizes[a].astype(np.float64), sizes[b].astype(np.float64)
        inter = jac * (na + nb) / (1.0 + jac)
        con = np.minimum(inter / np.maximum(np.minimum(na, nb), 1), 1.0)
        empty = (na == 0) | (nb == 0)
        out[s : s + chunk, 0] = np.where(empty, 0.0, jac)
        out[s : s + chunk, 1] = np.where(empty, 0.0, con)
    return out


def _median_time(fn, *args, sync=lambda: None, reps=3, warm=True):
    if warm:  # compiled and cached code (Numba, CuPy) is timed warm; a NumPy baseline needs no warm-up
        fn(*args)
        sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(*args)
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--num-perm", type=int, default=128)
    a = ap.parse_args()
    indptr, hashes, seeds, _, _ = overlap_case(0, n_prompts=a.rows, n_pairs=1, num_perm=a.num_perm)
    sig = reference.minhash_signatures(indptr, hashes, seeds)
    sizes = np.diff(indptr).astype(np.int32)
    gpu = gpu_count() > 0
    for m in a.pairs:
        rng = np.random.default_rng(m)
        i = rng.integers(0, a.rows, m).astype(np.int64)
        j = rng.integers(0, a.rows, m).astype(np.int64)
        check = slice(0, min(m, 100_000))
        want = reference.skeleton_overlap(sig, sizes, i[check], j[check])
        np.testing.assert_allclose(naive_numpy(sig, sizes, i[check], j[check]), want, atol=1e-6)
        base = {"commit": _commit(), "pairs": m, "rows": a.rows, "num_perm": a.num_perm}
        t_np = _median_time(naive_numpy, sig, sizes, i, j, reps=1, warm=False)
        t_nb = _median_time(reference.skeleton_overlap, sig, sizes, i, j)
        print(
            json.dumps(
                {
                    **base,
                    "device": "cpu",
                    "impl": "numpy_naive",
                    "seconds": round(t_np, 4),
                    "pairs_per_s": round(m / t_np),
                }
            )
        )
        print(
            json.dumps(
                {
                    **base,
                    "device": "cpu",
                    "impl": "numba_reference",
                    "seconds": round(t_nb, 4),
                    "pairs_per_s": round(m / t_nb),
                    "speedup_vs_numpy": round(t_np / t_nb, 2),
                }
            )
        )
        if gpu:
            import cupy as cp

            from clusterer.accel import kernels

            d_sig, d_sizes, d_i, d_j = (cp.asarray(x) for x in (sig, sizes, i, j))
            got = kernels.skeleton_overlap(d_sig, d_sizes, d_i[: want.shape[0]], d_j[: want.shape[0]]).get()
            np.testing.assert_allclose(got, want, atol=1e-6)
            sync = cp.cuda.Device().synchronize
            t_k = _median_time(kernels.skeleton_overlap, d_sig, d_sizes, d_i, d_j, sync=sync)
            moved = m * (2 * a.num_perm * 4 + 2 * 8 + 2 * 4 + 2 * 4)  # two signatures, ids, sizes, output
            props = cp.cuda.runtime.getDeviceProperties(0)
            clock_khz = props.get("memoryClockRate") or cp.cuda.runtime.deviceGetAttribute(36, 0)
            bus_bits = props.get("memoryBusWidth") or cp.cuda.runtime.deviceGetAttribute(37, 0)
            peak = 2 * clock_khz * 1e3 * bus_bits / 8
            print(
                json.dumps(
                    {
                        **base,
                        "device": props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
                        "impl": "cuda_kernel",
                        "seconds": round(t_k, 5),
                        "pairs_per_s": round(m / t_k),
                        "speedup_vs_numpy": round(t_np / t_k, 1),
                        "speedup_vs_numba": round(t_nb / t_k, 1),
                        "gb_per_s": round(moved / t_k / 1e9, 1),
                        "peak_gb_per_s": round(peak / 1e9, 1),
                        "share_of_peak": round(moved / t_k / peak, 3),
                    }
                )
            )


if __name__ == "__main__":
    main()
