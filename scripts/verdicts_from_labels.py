"""Verdicts for `clusterer calibrate` from a labelled day (a generated scenario's labels.parquet).

    python scripts/verdicts_from_labels.py --labels DAY/labels.parquet --run RUN_DIR --out verdicts.csv

Each family of the run with at least ``--min-size`` prompts gets a verdict from its majority kind:
``confirmed`` when most of its prompts are campaign prompts, ``rejected`` otherwise, with the majority
kind as ``group`` (so the fit balances legitimate customers, shared prompts, trending topics and ordinary
traffic). Stands in for analysts' verdicts when measuring what calibration does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--min-size", type=int, default=10)
    a = ap.parse_args()
    lab = pl.read_parquet(a.labels).select("prompt_id", "kind")
    asg = pl.read_parquet(a.run / "assignments.parquet").select("prompt_id", "cluster_id")
    fam = (
        asg.join(lab, on="prompt_id", how="left")
        .filter(pl.col("cluster_id") >= 0)
        .group_by("cluster_id")
        .agg(
            pl.len().alias("n"),
            ((pl.col("kind") == "campaign").mean() > 0.5).alias("campaign"),
            pl.col("kind").mode().sort().first().alias("group"),
        )
        .filter(pl.col("n") >= a.min_size)
        .sort("cluster_id")
    )
    out = fam.select(
        pl.lit(str(a.run.resolve())).alias("run"),
        "cluster_id",
        pl.when(pl.col("campaign")).then(pl.lit("confirmed")).otherwise(pl.lit("rejected")).alias("verdict"),
        "group",
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    out.write_csv(a.out)
    print(f"{out.height} verdicts ({int(fam['campaign'].sum())} confirmed) -> {a.out}")


if __name__ == "__main__":
    main()
