"""Recall@k and time of the approximate kNN indexes against exact search, on a real day's embeddings.

    python bench/bench_index.py LOGS [--k 15] [--sample 5000] [--model default|static]

The vectors are the ones the pipeline indexes: the day's distinct embeddings (scaffold views of templated
prompts, the text of the others, from the embedding cache when present), so recall is measured on
clustered, templated data rather than random vectors. Exact neighbours are computed for a sample of
query rows; each index answers over all rows. Recall@k counts a returned neighbour as a hit when it is
at least as similar as the exact k-th one (equal-similarity ties are interchangeable). One JSON line per
index.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import polars as pl

from clusterer.accel.backend import Backend
from clusterer.config import load_config
from clusterer.graph.knn import knn_graph
from clusterer.io.ingest import read_logs
from clusterer.text.normalise import normalise, text_keys
from clusterer.text.skeleton import build_skeletons
from clusterer.vectors.cache import embed_texts
from clusterer.vectors.encoders import load_encoder
from clusterer.vectors.rows import distinct_rows


def day_embeddings(logs: list[str], model: str) -> np.ndarray:
    """The day's distinct embedding vectors, as the pipeline indexes them."""
    cfg = load_config(None, quiet=True, device="cpu", **{"embed.model": model})
    frame = read_logs(logs, cfg.ingest).frame
    norm = normalise(frame["text"], cfg.normalise)
    texts = norm.text.filter(~pl.Series(norm.empty))
    sk = build_skeletons(texts, cfg.skeleton)
    use = pl.select(
        pl.when(pl.Series(sk.coverage >= cfg.skeleton.view_min_coverage)).then(sk.view).otherwise(texts)
    ).to_series()
    keys, first = np.unique(text_keys(use), return_index=True)
    enc = load_encoder(cfg.embed, Backend.CPU)
    emb = embed_texts(use.gather(first).to_list(), keys, enc, cfg.embed.resolved_cache_dir()).emb
    return distinct_rows(emb)[0]


def recall(got, exact_sim: np.ndarray, rows: np.ndarray, k: int) -> float:
    """Share of returned neighbours at least as similar as the exact k-th neighbour (ties count as hits)."""
    return float(np.mean((got.sim[rows] >= exact_sim[:, -1:] - 1e-5).sum(axis=1) / k))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--sample", type=int, default=5_000)
    ap.add_argument("--model", default="default")
    a = ap.parse_args()
    emb = day_embeddings(a.logs, a.model)
    base = load_config(None, **{"graph.k": a.k}).graph
    rows = np.random.default_rng(0).choice(len(emb), min(a.sample, len(emb)), replace=False)
    # exact neighbours of the sample rows (self excluded), and the full exact search's time
    sims = emb[rows] @ emb.T
    sims[np.arange(len(rows)), rows] = -np.inf
    exact_sim = -np.sort(-sims, axis=1)[:, : a.k]
    del sims
    t0 = time.perf_counter()
    knn_graph(emb, dataclasses.replace(base, index="flat"), Backend.CPU)
    t_exact = time.perf_counter() - t0
    print(json.dumps({"index": "flat", "n": len(emb), "k": a.k, "seconds": round(t_exact, 2), "recall_at_k": 1.0}))
    for kind in ("hnsw", "ivf"):
        t0 = time.perf_counter()
        got = knn_graph(emb, dataclasses.replace(base, index=kind), Backend.CPU)
        secs = time.perf_counter() - t0
        print(
            json.dumps(
                {
                    "index": kind,
                    "n": len(emb),
                    "k": a.k,
                    "seconds": round(secs, 2),
                    "speedup_vs_flat": round(t_exact / secs, 2),
                    "recall_at_k": round(recall(got, exact_sim, rows, a.k), 4),
                    "params": {"hnsw_m": base.hnsw_m, "ef_search": base.hnsw_ef_search}
                    if kind == "hnsw"
                    else {"nprobe": base.ivf_nprobe, "nlist": int(4 * np.sqrt(len(emb)))},
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
