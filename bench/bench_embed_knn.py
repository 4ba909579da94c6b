"""Embedding throughput and kNN-graph time on generated prompts; one JSON line per case.

    python bench/bench_embed_knn.py --n 100000 [--device auto] [--model default] [--max-tokens 64]

Prompts come from ``clusterer.synth`` (templated campaigns plus vocabulary background), so the run
needs no data files. The kNN result is checked against a brute-force NumPy search on a sample of rows
before it is timed; the baseline printed beside FAISS is that NumPy search, extrapolated from the sample.
Nothing is cached: every prompt is embedded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

import numpy as np

from clusterer.accel.backend import Backend, Device, resolve
from clusterer.config import EmbedConfig, GraphConfig
from clusterer.graph.knn import knn_graph
from clusterer.synth import fake_day
from clusterer.vectors.encoders import load_encoder


def _sync(backend: Backend) -> None:
    if backend is Backend.GPU:
        import torch

        torch.cuda.synchronize()


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--device", default="auto", choices=[d.value for d in Device])
    ap.add_argument("--model", default="default")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--k", type=int, default=15)
    a = ap.parse_args()
    backend = resolve(Device(a.device))
    sizes = (a.n // 10, a.n // 20)
    traffic, _ = fake_day(seed=1, n_benign=a.n - sum(sizes), campaign_sizes=sizes, accounts_per_campaign=100)
    texts = traffic["text"].to_list()
    enc = load_encoder(EmbedConfig(model=a.model, max_tokens=a.max_tokens), backend)
    enc.encode(texts[:256])  # warm-up
    _sync(backend)
    t0 = time.perf_counter()
    emb = enc.encode(texts)
    _sync(backend)
    t_embed = time.perf_counter() - t0

    knn_graph(emb[:1000], GraphConfig(k=a.k), backend)  # warm-up
    t0 = time.perf_counter()
    knn = knn_graph(emb, GraphConfig(k=a.k), backend)
    _sync(backend)
    t_knn = time.perf_counter() - t0
    # correctness on a sample, and the NumPy brute-force baseline timed on that sample
    rng = np.random.default_rng(0)
    rows = rng.choice(len(emb), min(500, len(emb)), replace=False)
    t0 = time.perf_counter()
    s = emb[rows] @ emb.T
    s[np.arange(len(rows)), rows] = -np.inf
    want = -np.sort(-s, axis=1)[:, : a.k]
    t_np = (time.perf_counter() - t0) * len(emb) / len(rows)
    err = float(np.abs(knn.sim[rows] - want).max())
    assert err < (2e-3 if backend is Backend.GPU else 1e-4), f"kNN disagrees with brute force: {err}"
    common = {"device": str(backend), "n": len(texts), "commit": _commit()}
    print(
        json.dumps(
            {
                **common,
                "case": "embed",
                "model": enc.key,
                "seconds": round(t_embed, 3),
                "prompts_per_s": round(len(texts) / t_embed, 1),
            }
        )
    )
    print(
        json.dumps(
            {
                **common,
                "case": "knn",
                "k": a.k,
                "seconds": round(t_knn, 3),
                "numpy_bruteforce_seconds_est": round(t_np, 3),
                "speedup_vs_numpy": round(t_np / t_knn, 2),
                "max_abs_err_vs_numpy": err,
            }
        )
    )


if __name__ == "__main__":
    main()
