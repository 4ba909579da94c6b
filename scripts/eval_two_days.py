"""Check campaign-ID stability and `clusterer assign` on two consecutive generated days.

    python scripts/eval_two_days.py --day1 D1 --day2 D2 --run1 R1 --run2 R2 --assign A2

D1/D2: scenario folders from gen_scenario.py (labels.parquet); R1/R2: `clusterer run --registry REG`
outputs of day 1 then day 2; A2: `clusterer assign D2/traffic.parquet --registry REG` output written after
day 1 only (so it tests labelling late data from known campaigns). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("day1", "day2", "run1", "run2", "assign"):
        ap.add_argument(f"--{name}", type=Path, required=True)
    a = ap.parse_args()

    def joined(run: Path, day: Path) -> pl.DataFrame:
        return pl.read_parquet(run / "assignments.parquet").join(
            pl.read_parquet(day / "labels.parquet").select("prompt_id", "label", "kind"), on="prompt_id"
        )

    d1, d2 = joined(a.run1, a.day1), joined(a.run2, a.day2)
    ids1 = d1.filter(pl.col("campaign_id").is_not_null()).group_by("label").agg(pl.col("campaign_id").unique())
    ids1 = {r["label"]: set(r["campaign_id"]) for r in ids1.iter_rows(named=True) if r["label"] is not None}
    all1 = set().union(*ids1.values()) if ids1 else set()
    labels1 = set(d1["label"].drop_nulls().unique().to_list())
    labels2 = set(d2["label"].drop_nulls().unique().to_list())
    res: dict = {"continuing": {}, "new": {}}
    for lab in sorted(labels2):
        f = d2.filter((pl.col("label") == lab) & pl.col("campaign_id").is_not_null())
        if lab in labels1:
            keep = f["campaign_id"].is_in(list(ids1.get(lab, set()))).mean() if f.height else 0.0
            res["continuing"][lab] = round(float(keep), 4)
        else:
            stray = f["campaign_id"].is_in(list(all1)).mean() if f.height else 0.0
            main = f["campaign_id"].mode().sort()[0] if f.height else None
            res["new"][lab] = {"main_id_is_old": main in all1, "prompts_with_old_id": round(float(stray), 4)}
    res["continuing_kept_id_share"] = round(
        sum(v >= 0.5 for v in res["continuing"].values()) / max(len(res["continuing"]), 1), 4
    )
    res["new_campaigns_inheriting_an_old_id"] = sum(v["main_id_is_old"] for v in res["new"].values())
    asg = pl.read_parquet(a.assign).join(
        pl.read_parquet(a.day2 / "labels.parquet").select("prompt_id", "label", "kind"), on="prompt_id"
    )
    cont = asg.filter(pl.col("label").is_in(list(labels1 & labels2)))
    ok = [cid in ids1.get(lab, set()) for lab, cid in zip(cont["label"], cont["campaign_id"], strict=True)]
    res["assign_continuing_correct"] = round(sum(ok) / max(len(ok), 1), 4)
    neg = asg.filter(pl.col("kind") != "campaign")
    res["assign_non_campaign_with_id"] = round(float(neg["campaign_id"].is_not_null().mean()), 5)
    res["assign_benign_with_id"] = round(
        float(neg.filter(pl.col("kind") == "benign")["campaign_id"].is_not_null().mean()), 5
    )
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
