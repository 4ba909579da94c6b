"""Measure `clusterer fingerprints match` on a labelled generated day.

    python scripts/eval_fingerprints.py --labels DAY_B/labels.parquet --run RUN_B \
        [--exported-labels DAY_A/labels.parquet --exported-run RUN_A]

RUN_B: a run of day B after `clusterer fingerprints match FILE RUN_B` (FILE exported from day A's registry).
Prints one JSON object: per campaign label the share of its prompts matched (``peer_campaign`` not null in
assignments.parquet: the prompt's own shingles match), the recall over all campaign prompts (of the labels
that day A's export holds when --exported-labels and --exported-run are given: a label counts as exported
when most of its day-A prompts carry a registry campaign ID), and the share of prompts of every other kind
that were matched; the same for prompts in matched clusters (clusters.parquet ``peer_campaign``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--exported-labels", type=Path, default=None)
    ap.add_argument("--exported-run", type=Path, default=None)
    a = ap.parse_args()
    lab = pl.read_parquet(a.labels).select("prompt_id", "label", "kind")
    asg = pl.read_parquet(a.run / "assignments.parquet").select("prompt_id", "cluster_id", "peer_campaign")
    cl = pl.read_parquet(a.run / "clusters.parquet").select("cluster_id", pl.col("peer_campaign").alias("_cl"))
    df = asg.join(lab, on="prompt_id").join(cl, on="cluster_id", how="left")
    df = df.with_columns(
        pl.col("peer_campaign").is_not_null().alias("any"),
        pl.col("_cl").is_not_null().alias("cluster"),
    )
    shared = None
    if a.exported_labels is not None and a.exported_run is not None:
        day_a = pl.read_parquet(a.exported_run / "assignments.parquet").join(
            pl.read_parquet(a.exported_labels).select("prompt_id", "label"), on="prompt_id"
        )
        per = (
            day_a.filter(pl.col("label").is_not_null())
            .group_by("label")
            .agg(pl.col("campaign_id").is_not_null().mean())
        )
        shared = set(per.filter(pl.col("campaign_id") > 0.5)["label"].to_list())
    camp = df.filter(pl.col("kind") == "campaign")
    if shared is not None:
        camp = camp.filter(pl.col("label").is_in(sorted(shared)))
    out = {
        "exported_labels": sorted(shared) if shared is not None else None,
        "campaign_prompts": camp.height,
        "recall": round(float(camp["any"].mean()), 4),
        "recall_clusters_only": round(float(camp["cluster"].mean()), 4),
        "per_campaign": {
            r["label"]: round(r["any"], 4)
            for r in camp.group_by("label").agg(pl.col("any").mean()).sort("label").iter_rows(named=True)
        },
        "matched_share_by_kind": {
            r["kind"]: {"matched": round(r["any"], 5), "clusters_only": round(r["cluster"], 5), "prompts": r["n"]}
            for r in df.filter(pl.col("kind") != "campaign")
            .group_by("kind")
            .agg(pl.col("any").mean(), pl.col("cluster").mean(), pl.len().alias("n"))
            .sort("kind")
            .iter_rows(named=True)
        },
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
