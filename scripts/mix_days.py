"""Mix labelled days into one busier day: more campaign families side by side, as a provider's day holds.

    python scripts/mix_days.py --out DIR DAY [DAY ...] [--fraction 1.0] [--seed 3]

Each DAY is a folder with ``traffic.parquet`` and ``labels.parquet`` (``gen_scenario.py`` output or the
public evaluation's format). The days are moved onto the first day's date (times of day kept, account
creation times moved by the same offset), their prompt, account and organisation IDs and their campaign
labels and groups prefixed with ``s<i>_`` so nothing of two sources collides, concatenated in time order
and, with ``--fraction``, sampled down (a 3 × 100k mix at 1/3 is a 100k day with every family of the three,
each a third of its size). Writes DIR/traffic.parquet and DIR/labels.parquet; prints one JSON line (prompts,
campaign families, per-kind counts).

Mixing days generated from the same prompt pools makes their ordinary prompts overlap: a text one day uses
as a campaign's payload may arrive as an ordinary prompt of another (more re-use than either day has).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import polars as pl

IDS = ("prompt_id", "account_id", "org_id")


def _day_start(ts: pl.Series) -> dt.datetime:
    first = ts.min()
    assert isinstance(first, dt.datetime), "timestamp column must be a datetime"
    return first.replace(hour=0, minute=0, second=0, microsecond=0)


def mix(days: list[Path], fraction: float = 1.0, seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(traffic, labels) of ``days`` mixed into one day (see the module docstring)."""
    traffic, labels = [], []
    base: dt.datetime | None = None
    for i, d in enumerate(days):
        t = pl.read_parquet(d / "traffic.parquet")
        lab = pl.read_parquet(d / "labels.parquet")
        start = _day_start(t["timestamp"])
        base = base or start
        shift = base - start
        tag = f"s{i}_"
        t = t.with_columns(
            *[(tag + pl.col(c)).alias(c) for c in IDS if c in t.columns],
            pl.col("timestamp") + shift,
            *([pl.col("account_created_at") + shift] if "account_created_at" in t.columns else []),
        )
        lab = lab.with_columns(
            *[(tag + pl.col(c)).alias(c) for c in ("prompt_id", "account_id", "label", "group") if c in lab.columns]
        )
        traffic.append(t)
        labels.append(lab)
    t = pl.concat(traffic, how="diagonal_relaxed").sort("timestamp")
    lab = pl.concat(labels, how="diagonal_relaxed")
    if fraction < 1.0:
        t = t.sample(fraction=fraction, seed=seed).sort("timestamp")
        lab = lab.join(t.select("prompt_id"), on="prompt_id", how="semi")
    return t, lab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("days", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fraction", type=float, default=1.0, help="share of the mixed prompts kept (sampled)")
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    if not 0.0 < a.fraction <= 1.0:
        ap.error("--fraction must be in (0, 1]")
    t, lab = mix(a.days, a.fraction, a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    t.write_parquet(a.out / "traffic.parquet")
    lab.write_parquet(a.out / "labels.parquet")
    kinds = dict(lab.group_by("kind").len().sort("kind").iter_rows())
    families = lab.filter(pl.col("kind") == "campaign")["label"].n_unique()
    print(json.dumps({"prompts": t.height, "campaign_families": families, "kinds": kinds}))


if __name__ == "__main__":
    main()
