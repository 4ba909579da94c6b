"""HDBSCAN on a day's sparse candidate graph: the `hdbscan` package's tree routines (what `cluster_edges`
used, through its private modules) against `fast_hdbscan`'s public precomputed sparse-graph path.

Input: an .npz of the clustering stage's edges (n, i, j, d), e.g. dumped from a run with
``--dump-edges``-style instrumentation. Prints one JSON line per method: seconds (second call, after
Numba compilation), clusters, noise share, and adjusted Rand index / exact agreement with the reference.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score

from clusterer.cluster import _MIN_W, mutual_reachability_mst
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("edges", nargs="+")
    a = ap.parse_args()
    cfg = ClusterConfig()
    for path in a.edges:
        z = np.load(path)
        n, i, j, d = int(z["n"]), z["i"], z["j"], z["d"]
        ref = None
        for name, fn in (("hdbscan_private", private_hdbscan), ("fast_hdbscan_precomputed", fast)):
            fn(n, i, j, d, cfg)  # compile / warm
            t0 = time.perf_counter()
            lab = fn(n, i, j, d, cfg)
            secs = time.perf_counter() - t0
            ref = lab if ref is None else ref
            out = {
                "edges": path,
                "n": n,
                "method": name,
                "seconds": round(secs, 2),
                "clusters": int(lab.max() + 1),
                "noise_share": round(float((lab < 0).mean()), 4),
                "ari_vs_private": round(float(adjusted_rand_score(ref, lab)), 6),
                "same_partition": bool(adjusted_rand_score(ref, lab) == 1.0),
            }
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
