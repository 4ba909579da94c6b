"""Recall@k and time of the approximate kNN indexes against exact search, on a real day's embeddings.

    python bench/bench_index.py LOGS [--k 15] [--sample 20000]

The embeddings are the ones the pipeline clusters (scaffold views of templated prompts, the text of the
others, from the embedding cache when present), so recall is measured on clustered, templated data rather
than random vectors. Exact neighbours are computed for a sample of query rows; each index answers the
same queries over all rows. One JSON line per index.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import polars as pl

from clusterer.backend import Backend
from clusterer.config import load_config
from clusterer.embed import embed_texts, load_encoder
from clusterer.graph import knn_graph
from clusterer.ingest import read_logs
from clusterer.normalise import normalise, text_keys
from clusterer.skeleton import build_skeletons


def day_embeddings(logs: list[str]) -> np.ndarray:
    cfg = load_config(None, quiet=True, device="cpu")
    frame = read_logs(logs, cfg.ingest).frame
    norm = normalise(frame["text"], cfg.normalise)
    texts = norm.text.filter(~pl.Series(norm.empty))
    sk = build_skeletons(texts, cfg.skeleton)
    use = pl.select(
        pl.when(pl.Series(sk.coverage >= cfg.skeleton.view_min_coverage)).then(sk.view).otherwise(texts)
    ).to_series()
    keys, first, inverse = np.unique(text_keys(use), return_index=True, return_inverse=True)
    enc = load_encoder(cfg.embed, Backend.CPU)
    emb = embed_texts(use.gather(first).to_list(), keys, enc, cfg.embed.resolved_cache_dir()).emb
    return emb[inverse.ravel()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--sample", type=int, default=20_000)
    a = ap.parse_args()
    emb = day_embeddings(a.logs)
    base = load_config(None, **{"graph.k": a.k}).graph
    t0 = time.perf_counter()
    exact = knn_graph(emb, dataclasses.replace(base, index="flat"), Backend.CPU)
    t_exact = time.perf_counter() - t0
    rows = np.random.default_rng(0).choice(len(emb), min(a.sample, len(emb)), replace=False)
    print(json.dumps({"index": "flat", "n": len(emb), "k": a.k, "seconds": round(t_exact, 2), "recall_at_k": 1.0}))
    for kind in ("ivf", "hnsw"):
        t0 = time.perf_counter()
        got = knn_graph(emb, dataclasses.replace(base, index=kind), Backend.CPU)
        secs = time.perf_counter() - t0
        hits = [len(np.intersect1d(got.idx[r], exact.idx[r])) / a.k for r in rows]
        # ties at equal similarity make "which neighbour" arbitrary; count a hit when the similarity is reached
        sim_ok = np.mean(got.sim[rows, -1] >= exact.sim[rows, -1] - 1e-6)
        print(
            json.dumps(
                {
                    "index": kind,
                    "n": len(emb),
                    "k": a.k,
                    "seconds": round(secs, 2),
                    "speedup_vs_flat": round(t_exact / secs, 2),
                    "recall_at_k": round(float(np.mean(hits)), 4),
                    "kth_similarity_reached": round(float(sim_ok), 4),
                    "nprobe": base.ivf_nprobe,
                    "hnsw_ef_search": base.hnsw_ef_search,
                }
            )
        )


if __name__ == "__main__":
    main()
