"""Make an evasion copy of a labelled day (characters varied, payload first), to measure the clusterer under it.

    python scripts/obfuscate_day.py --day DAY_DIR --out OUT_DIR [--rate 0.12] [--others 0.1] [--seed 5]
        [--payload-first]

DAY_DIR holds traffic.parquet and labels.parquet (the evaluation's format: labels.kind = 'campaign' marks
campaign prompts). OUT_DIR gets the same two files, the traffic's text changed: every campaign prompt, and
a share --others of the other prompts, carries zero-width characters, look-alike letters of other scripts
(Cyrillic, Greek, Armenian) and stacked combining marks in about --rate of its words (see
``clusterer.synth.obfuscate``; ``--rate 0`` none). ``--payload-first`` also moves each campaign prompt's
last paragraph (blank-line separated; where a template puts its payload) to the front. Rows, IDs,
accounts, times and labels are unchanged, so the copy is scored with the same labels: ``clusterer run
OUT_DIR/traffic.parquet ...`` then ``score.py --labels OUT_DIR/labels.parquet``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import polars as pl

from clusterer.synth import obfuscate_day


def _payload_first(text: str) -> str:
    """``text`` with its last paragraph (blank-line separated) moved to the front."""
    parts = text.split("\n\n")
    return "\n\n".join([parts[-1], *parts[:-1]]) if len(parts) > 1 else text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--day", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rate", type=float, default=0.12, help="share of a prompt's words changed (each way)")
    ap.add_argument("--others", type=float, default=0.1, help="share of non-campaign prompts changed too")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--payload-first", action="store_true", help="campaign prompts' last paragraph moved first")
    a = ap.parse_args()
    traffic = pl.read_parquet(a.day / "traffic.parquet")
    labels = pl.read_parquet(a.day / "labels.parquet", columns=["prompt_id", "kind"])
    kind = traffic.select("prompt_id").join(labels, on="prompt_id", how="left", maintain_order="left")["kind"]
    if kind.null_count():
        raise SystemExit(f"{a.day / 'labels.parquet'}: {kind.null_count()} prompts of the traffic have no label")
    campaign = kind == "campaign"
    out = traffic
    if a.payload_first:
        out = out.with_columns(
            pl.Series(
                "text",
                [_payload_first(t) if c and t else t for t, c in zip(out["text"], campaign, strict=True)],
                dtype=pl.String,
            )
        )
    if a.rate > 0:
        out = obfuscate_day(out, campaign, np.random.default_rng(a.seed), a.rate, a.others)
    a.out.mkdir(parents=True, exist_ok=True)
    out.write_parquet(a.out / "traffic.parquet")
    shutil.copy(a.day / "labels.parquet", a.out / "labels.parquet")
    changed = int((out["text"] != traffic["text"]).sum())
    print(f"{changed} of {traffic.height} prompts changed ({int((kind == 'campaign').sum())} campaign prompts)")


if __name__ == "__main__":
    main()
