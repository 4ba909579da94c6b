"""HDBSCAN on a day's sparse candidate graph: the `hdbscan` package's tree routines (what `cluster_edges`
calls, in its private modules, pinned) against `fast_hdbscan`'s public precomputed sparse-graph path.

    python bench/bench_hdbscan.py LOGS [LOGS ...] [--model static]   (pip install -e ".[bench]")

Each LOGS file is run through the pipeline up to the clustering stage, whose edges (n, i, j, d) are
captured; both methods then cluster the same edges. Prints one JSON line per method: seconds (second call,
after Numba compilation), clusters, noise share, adjusted Rand index against the pinned hdbscan path.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score

from clusterer.clustering.hdbscan import _MIN_W, mutual_reachability_mst
from clusterer.config import ClusterConfig


def private_hdbscan(n, i, j, d, cfg):
    from hdbscan._hdbscan_linkage import label
    from hdbscan._hdbscan_tree import compute_stability, condense_tree, get_clusters

    mst = mutual_reachability_mst(n, i, j, d, cfg.min_samples)
    slt = label(mst)
    condensed = condense_tree(slt, cfg.min_cluster_size)
    stability = compute_stability(condensed)
    raw, prob, _ = get_clusters(condensed, stability, cfg.selection, False, False, cfg.epsilon, 0)
    return np.asarray(raw, np.int64)


def fast(n, i, j, d, cfg):
    from fast_hdbscan import fast_hdbscan
    from scipy.sparse import coo_matrix

    w = np.maximum(d, _MIN_W)
    g = coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    labels, _ = fast_hdbscan(
        g,
        metric="precomputed",
        min_samples=cfg.min_samples - 1,
        min_cluster_size=cfg.min_cluster_size,
        cluster_selection_method=cfg.selection,
        cluster_selection_epsilon=float(cfg.epsilon),
    )
    return np.asarray(labels, np.int64)


def capture_edges(logs: str, model: str) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """The clustering stage's input for one day: (n, i, j, d)."""
    import clusterer
    import clusterer.run.stages as stages

    seen: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    original = stages.cluster_edges

    def spy(n, i, j, d, cfg):
        seen.append((n, i.copy(), j.copy(), d.copy()))
        return original(n, i, j, d, cfg)

    stages.cluster_edges = spy
    try:
        clusterer.cluster([logs], model=model, quiet=True)
    finally:
        stages.cluster_edges = original
    return seen[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--model", default="static")
    a = ap.parse_args()
    cfg = ClusterConfig()
    for path in a.logs:
        n, i, j, d = capture_edges(path, a.model)
        ref = None
        for name, fn in (("hdbscan_private", private_hdbscan), ("fast_hdbscan_precomputed", fast)):
            fn(n, i, j, d, cfg)  # compile / warm
            t0 = time.perf_counter()
            lab = fn(n, i, j, d, cfg)
            secs = time.perf_counter() - t0
            ref = lab if ref is None else ref
            out = {
                "logs": path,
                "n": n,
                "edges": int(len(i)),
                "method": name,
                "seconds": round(secs, 2),
                "clusters": int(lab.max() + 1),
                "noise_share": round(float((lab < 0).mean()), 4),
                "ari_vs_private": round(float(adjusted_rand_score(ref, lab)), 6),
            }
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
