"""Measure `clusterer stream` against labels and a batch run of the same day.

    python scripts/eval_stream.py --labels DAY/labels.parquet --stream STREAM_OUT --batch BATCH_RUN

Prints one JSON object: per campaign label, the window of its first prompt, the window where a prompt of it
was first flagged and the delay (1 = flagged in the window it started in), the time from its first prompt
to the end of that window (minutes); the median and worst delay, the share of campaigns flagged within two
windows (and, apart, within two windows of the campaign's first window with at least ``--bulk`` prompts:
a campaign that opens with a trickle of a few prompts an hour is counted from its first prompt above, from
its bulk here); the ID agreement with the batch run: batch campaign IDs and stream IDs are paired one to one,
largest overlap first, and it is the share of the batch run's flagged campaign prompts whose stream ID is
their batch ID's pair (``_lenient``: each batch ID paired with the stream ID most of its prompts carry, so
one stream ID standing for two batch campaigns counts for both; ``_resolved``: the stream IDs followed
through the registry's ``merged_into`` at the end of the day, as a consumer joining on them reads them);
stream IDs per campaign label and the share of campaign prompts that carry their campaign's most common
stream ID (no batch run needed); prompt precision / recall of the stream's flags; the carried state
(registry bytes and campaigns after the last window).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import polars as pl

from clusterer.store.registry import aliases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, required=True)
    ap.add_argument("--stream", type=Path, required=True)
    ap.add_argument("--batch", type=Path, default=None, help="a batch run of the same day (for ID agreement)")
    ap.add_argument("--bulk", type=int, default=10, help="prompts in a window that start a campaign's bulk")
    a = ap.parse_args()
    state = json.loads((a.stream / "stream.json").read_text())
    every = dt.timedelta(seconds=state["every_s"])
    parts = []
    for w in state["windows"]:
        asg = pl.read_parquet(a.stream / w["dir"] / "assignments.parquet")
        parts.append(
            asg.select("prompt_id", "timestamp", "campaign_id", "flagged").with_columns(pl.lit(w["index"]).alias("win"))
        )
    s = pl.concat(parts)
    lab = pl.read_parquet(a.labels).select("prompt_id", "label", "kind")
    if a.batch is not None:
        b = pl.read_parquet(a.batch / "assignments.parquet").select(
            "prompt_id", pl.col("campaign_id").alias("batch_id"), pl.col("flagged").alias("batch_flagged")
        )
    else:
        b = s.select(
            "prompt_id", pl.lit(None, pl.String).alias("batch_id"), pl.lit(None, pl.Boolean).alias("batch_flagged")
        )
    # each window's IDs as written, and as a consumer reads them at the end of the day: followed through the
    # registry's merged_into to the campaign they were merged into
    reg_path = Path(state.get("registry", "")) / "campaigns.parquet"
    root = aliases(pl.read_parquet(reg_path)) if state.get("registry") and reg_path.is_file() else {}
    s = s.with_columns(pl.col("campaign_id").replace(root).alias("resolved_id"))
    df = s.join(lab, on="prompt_id").join(b, on="prompt_id", how="left")
    assert df.height == s.height == lab.height, "every labelled prompt in exactly one window"
    if a.batch is not None:
        missing = df.filter(pl.col("batch_flagged").is_null())["prompt_id"]
        if missing.len():
            ap.error(
                f"--batch {a.batch}: {missing.len()} of the {df.height} labelled prompts are not in its "
                f"assignments (e.g. {', '.join(missing.head(3).to_list())}): a run of another day? ID agreement "
                "needs the batch run of the streamed day"
            )
    camp = df.filter(pl.col("kind") == "campaign")
    first = camp.group_by("label").agg(
        pl.col("win").min().alias("start_win"),
        pl.col("timestamp").min().alias("first_prompt"),
        pl.col("win").filter(pl.col("flagged")).min().alias("flag_win"),
    )
    first = first.with_columns((pl.col("flag_win") - pl.col("start_win") + 1).alias("delay_windows"))
    per_win = camp.group_by("label", "win").agg(pl.len().alias("n")).sort("label", "win")
    bulk = per_win.group_by("label").agg(
        pl.col("win").filter(pl.col("n") >= a.bulk).min().alias("bulk_win"),
        pl.col("n").head(4).alias("first_windows"),  # prompts in its first windows that have any
    )
    first = first.join(bulk, on="label", how="left").with_columns(
        (pl.col("flag_win") - pl.col("bulk_win") + 1).alias("delay_from_bulk")
    )
    us = int(every.total_seconds() * 1e6)
    first = first.with_columns(
        (((pl.col("flag_win") + 1) * us - pl.col("first_prompt").dt.epoch("us")).cast(pl.Float64) / 60e6).alias(
            "minutes_to_flag"
        )
    )
    delays = first["delay_windows"]
    # ID agreement: batch IDs and stream IDs paired one to one, largest overlap first (a stream ID that
    # stands for two batch campaigns agrees with one of them only); the lenient reading pairs each batch ID
    # with the stream ID most of its prompts carry, even when another batch ID took that one too
    flagged_b = df.filter(pl.col("batch_id").is_not_null() & (pl.col("kind") == "campaign"))

    def overlap(column: str) -> pl.DataFrame:
        return (
            flagged_b.filter(pl.col(column).is_not_null())
            .group_by("batch_id", column)
            .agg(pl.len().alias("n"))
            .sort(["n", "batch_id", column], descending=[True, False, False])
        )

    def one_to_one(column: str) -> dict[str, str]:
        pairs: dict[str, str] = {}
        taken: set[str] = set()
        for bid, cid, _ in overlap(column).iter_rows():
            if bid not in pairs and cid not in taken:
                pairs[bid] = cid
                taken.add(cid)
        return pairs

    def agreement(pairs: dict[str, str], column: str = "campaign_id") -> float:
        got = flagged_b.select(pl.col("batch_id").replace_strict(pairs, default=None, return_dtype=pl.String))
        return float((flagged_b[column] == got.to_series()).fill_null(False).mean())

    lenient = overlap("campaign_id").group_by("batch_id", maintain_order=True).first()
    paired = dict(zip(lenient["batch_id"], lenient["campaign_id"], strict=True))

    n_ids = camp.filter(pl.col("campaign_id").is_not_null()).group_by("label").agg(pl.col("campaign_id").n_unique())
    # without a batch run: the share of each campaign's prompts that carry its most common stream ID
    fl = camp.filter(pl.col("campaign_id").is_not_null())
    top = fl.group_by("label", "campaign_id").agg(pl.len().alias("n")).group_by("label").agg(pl.col("n").max())
    majority = int(top["n"].sum()) / max(camp.height, 1)
    tp = int((df["flagged"] & (df["kind"] == "campaign")).sum())
    last = state["windows"][-1]
    out = {
        "windows": len(state["windows"]),
        "window_minutes": every.total_seconds() / 60,
        "campaigns": first.height,
        "delay_windows_median": float(delays.median()) if delays.drop_nulls().len() else None,
        "delay_windows_worst": int(delays.max()) if delays.null_count() == 0 else None,
        "never_flagged": first.filter(pl.col("flag_win").is_null())["label"].to_list(),
        "flagged_within_two_windows": round(float((delays.fill_null(99) <= 2).mean()), 4),
        "flagged_within_two_windows_of_bulk": round(float((first["delay_from_bulk"].fill_null(99) <= 2).mean()), 4),
        "minutes_to_flag_median": round(float(first["minutes_to_flag"].median()), 1),
        "minutes_to_flag_worst": round(float(first["minutes_to_flag"].max()), 1),
        "batch_id_agreement": round(agreement(one_to_one("campaign_id")), 4) if a.batch is not None else None,
        "batch_id_agreement_lenient": round(agreement(paired), 4) if a.batch is not None else None,
        "batch_id_agreement_resolved": (
            round(agreement(one_to_one("resolved_id"), "resolved_id"), 4) if a.batch is not None else None
        ),
        "stream_ids_per_campaign": dict(sorted(n_ids.iter_rows())),
        "prompts_with_their_campaigns_main_id": round(majority, 4),
        "prompt_precision": round(tp / max(int(df["flagged"].sum()), 1), 4),
        "prompt_recall": round(tp / max(camp.height, 1), 4),
        "batch_prompt_recall": round(float(camp["batch_flagged"].fill_null(False).mean()), 4) if a.batch else None,
        "registry_bytes": last["registry_bytes"],
        "registry_campaigns": last["registry_campaigns"],
        "registry_mem_bytes_max": max((w.get("registry_mem_bytes") or 0) for w in state["windows"]),
        "peak_rss_mb": max((w.get("peak_rss_mb") or 0) for w in state["windows"]),
        "seconds_per_window_median": sorted(w["seconds"] for w in state["windows"])[len(state["windows"]) // 2],
        "per_campaign": {
            r["label"]: {
                "start": r["start_win"],
                "flagged": r["flag_win"],
                "minutes": round(r["minutes_to_flag"] or -1, 1),
                "bulk": r["bulk_win"],
                "first_windows_prompts": r["first_windows"],
            }
            for r in first.sort("label").iter_rows(named=True)
        },
    }
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
