"""History index at scale: add days of vectors until the history holds ``--total`` vectors, then annotate.

    python bench/bench_history.py [--total 1000000] [--per-day 100000] [--dim 384] [--work DIR]

Each synthetic day is a run folder (``vectors.npy``, ``vector_of_row.npy``, ``assignments.parquet``,
``manifest.json``) whose vectors are drawn around a fixed set of "template" directions (like a day's
clustered prompts) plus background; every day re-sends a few campaign directions with fresh noise, so
later days have known near-duplicates in the history. Prints per-day add seconds, disk bytes per vector,
and for the final annotation: seconds, peak RSS and how many planted continuing clusters were found.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl

from clusterer.store.history import HistoryConfig, add_day, annotate_clusters, history_stats


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fake_run(folder: Path, day: int, n: int, dim: int, centres: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """A run folder of n vectors: 20% around campaign centres (cluster ids = centre index), the rest
    background noise; returns (vectors, labels)."""
    n_c = n // 5
    lab = np.full(n, -1, np.int64)
    which = rng.integers(0, len(centres), n_c)
    vec = np.empty((n, dim), np.float32)
    vec[:n_c] = _unit(centres[which] + 0.15 * rng.normal(size=(n_c, dim)) / np.sqrt(dim) * 4)
    vec[n_c:] = _unit(rng.normal(size=(n - n_c, dim)))
    lab[:n_c] = which
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "vectors.npy", vec.astype(np.float16))
    np.save(folder / "vector_of_row.npy", np.arange(n, dtype=np.int64))
    ts = dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc) + dt.timedelta(days=day)
    pl.DataFrame(
        {
            "cluster_id": lab,
            "campaign_id": [f"cmp-{c}" if c >= 0 else None for c in lab.tolist()],
            "timestamp": pl.Series([ts] * n).dt.cast_time_unit("us"),
        }
    ).write_parquet(folder / "assignments.parquet")
    (folder / "manifest.json").write_text(
        json.dumps({"started_at": ts.isoformat() + f"-{day}", "embedding": {"model_key": f"bench-{dim}"}})
    )
    return vec, lab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--total", type=int, default=1_000_000)
    ap.add_argument("--per-day", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--work", type=Path, default=Path("bench_out/history"))
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    rng = np.random.default_rng(0)
    old = rng.normal(size=(50, a.dim))  # campaigns that run every day
    index = a.work / "index"
    days = a.total // a.per_day
    for d in range(days):
        fake_run(a.work / f"day{d}", d, a.per_day, a.dim, old, rng)
        t0 = time.perf_counter()
        add_day(a.work / f"day{d}", index, HistoryConfig())
        st = history_stats(index)
        print(json.dumps({"day": d, "add_seconds": round(time.perf_counter() - t0, 2), **st}), flush=True)
        shutil.rmtree(a.work / f"day{d}")
    # today: 50 continuing campaigns and 50 new ones
    new = rng.normal(size=(50, a.dim))
    vec, lab = fake_run(a.work / "today", days, a.per_day, a.dim, np.concatenate([old, new]), rng)
    t0 = time.perf_counter()
    ann = annotate_clusters(index, f"bench-{a.dim}", vec, np.arange(len(vec)), lab, 100, HistoryConfig())
    secs = time.perf_counter() - t0
    found = ann.filter(pl.col("history_days") > 0)["cluster_id"].to_numpy()
    print(
        json.dumps(
            {
                "annotate_seconds": round(secs, 2),
                "queries": int(min(16, a.per_day) * 100),
                "continuing_found": int((found < 50).sum()),
                "continuing_total": 50,
                "new_wrongly_found": int((found >= 50).sum()),
                "median_days_matched": float(ann.filter(pl.col("cluster_id") < 50)["history_days"].median()),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                **history_stats(index),
            }
        )
    )


if __name__ == "__main__":
    main()
