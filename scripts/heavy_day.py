"""A day where a few heavy accounts post many different templates: real jailbreak prompts with external labels.

    python scripts/heavy_day.py --pools POOLS_DIR --out DIR [--accounts 13] [--background 10000] [--seed 3]

The in-the-wild jailbreak prompts of the public pools (``jailbreak_prompts.parquet``, Shen et al., with
the community each prompt belongs to) are posted by ``--accounts`` heavy accounts, each prompt 1-3 times
by randomly chosen ones (``--accounts 0``: one fresh account per post instead), among ordinary prompts
from many background users. Prompts of a named community are labelled as that community (kind
``campaign`` so that ``score.py`` measures how well communities are kept apart: ARI, best-cluster F1);
jailbreak prompts without a community are ``organic_template``; the background is ``benign``.

Grouping by shared accounts alone would fuse every community here: the same few accounts post all of
them. A grouping that weighs evidence by specificity keeps them apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl


def build(pools: Path, n_accounts: int, n_background: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    jb = pl.read_parquet(pools / "jailbreak_prompts.parquet").select("text", "community_name")
    benign = pl.read_parquet(pools / "benign_prompts.parquet")["text"].to_list()
    rows: list[dict] = []
    post = 0
    for text, community in jb.iter_rows():
        for _ in range(int(rng.integers(1, 4))):
            acct = f"heavy-{int(rng.integers(n_accounts))}" if n_accounts > 0 else f"once-{post}"
            named = bool(community and community.strip())
            rows.append(
                {
                    "text": text,
                    "account_id": acct,
                    "secs": float(rng.uniform(0, 86400)),
                    "label": f"community_{community.strip()}" if named else None,
                    "kind": "campaign" if named else "organic_template",
                    "group": community.strip() if named else "jailbreak",
                }
            )
            post += 1
    n_users = max(n_background // 3, 1)
    for _ in range(n_background):
        rows.append(
            {
                "text": benign[int(rng.integers(len(benign)))],
                "account_id": f"user-{int(rng.integers(n_users))}",
                "secs": float(np.clip(rng.normal(14, 4.5), 0, 23.99) * 3600),
                "label": None,
                "kind": "benign",
                "group": "background",
            }
        )
    df = pl.DataFrame(rows, infer_schema_length=None).sample(fraction=1.0, shuffle=True, seed=seed)
    return df.with_columns(
        (pl.lit(start) + pl.duration(seconds=pl.col("secs"))).dt.cast_time_unit("us").alias("timestamp"),
        pl.format("h-{}", pl.int_range(0, pl.len()).cast(pl.String).str.zfill(6)).alias("prompt_id"),
    ).sort("timestamp")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pools", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--accounts", type=int, default=13, help="heavy accounts (0 = one account per post)")
    ap.add_argument("--background", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    df = build(a.pools, a.accounts, a.background, a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    df.select("prompt_id", "account_id", "timestamp", "text").write_parquet(a.out / "traffic.parquet")
    df.select("prompt_id", "label", "kind", "account_id", "group").write_parquet(a.out / "labels.parquet")
    meta = {"accounts": a.accounts, "background": a.background, "seed": a.seed}
    meta["kind_counts"] = dict(df.group_by("kind").len().iter_rows())
    (a.out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
