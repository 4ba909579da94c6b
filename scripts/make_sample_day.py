"""Build the bundled sample day (data/sample_day.parquet + data/sample_labels.parquet).

Run once by the maintainers from the public prompt pools (see data/SOURCES.md):

    python scripts/make_sample_day.py --pools PATH/TO/POOLS --out data/

The campaign scaffolds below are this project's own, written for the sample; they are not the
evaluation's templates. The package never imports this script.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

CAMPAIGNS = {
    "sample_reward_grader": {
        "sources": ["gsm8k_train", "gsm8k_test"],
        "accounts": 25,
        "prompts": 180,
        "variants": [
            "You are a strict reward-model annotator. Solve the task yourself, then grade a typical answer "
            "on correctness (0-10) and clarity (0-10). Think inside <scratchpad> tags and return JSON with "
            "keys solution, correctness, clarity.\n\nTask: {payload}",
            "Reward annotation job. Work the problem out inside <scratchpad></scratchpad>, then output JSON "
            '{{"solution": ..., "correctness": 0-10, "clarity": 0-10}}.\n\nTask: {payload}',
        ],
    },
    "sample_code_reasoning": {
        "sources": ["mbpp_sanitized", "humaneval", "arena_hard_v2_coding"],
        "accounts": 30,
        "prompts": 160,
        "variants": [
            "Act as a principal engineer. Reason about the problem inside <reasoning> tags, list the edge "
            "cases, then give one complete Python solution in a single code block.\n\n### Problem\n{payload}",
            "Actúa como ingeniero principal. Razona dentro de etiquetas <reasoning>, enumera los casos "
            "límite y luego da una única solución completa en Python.\n\n### Problem\n{payload}",
        ],
    },
}
LEGIT = (
    "You are the support assistant of an online bookshop. Answer the customer's question politely "
    "in two sentences at most.\n\nCustomer: {payload}"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pools", type=Path, required=True, help="folder with benign_prompts.parquet etc.")
    ap.add_argument("--out", type=Path, default=Path("data"))
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--benign", type=int, default=1400)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    benign = pl.read_parquet(a.pools / "benign_prompts.parquet")
    shared = pl.read_parquet(a.pools / "shared_prompts.parquet")
    payloads = pl.read_parquet(a.pools / "payloads.parquet")
    day = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)
    rows: list[dict] = []

    def add(text, account, secs, label, kind):
        rows.append(
            {
                "account_id": account,
                "timestamp": day + dt.timedelta(seconds=float(secs)),
                "text": text,
                "label": label,
                "kind": kind,
            }
        )

    # background: real prompts, heavy-tailed accounts, diurnal timing
    pick = rng.choice(benign.height, a.benign, replace=False)
    acct = (rng.pareto(1.2, a.benign) * 3).astype(int) % 700
    for t, ac in zip(benign["text"].gather(pick).to_list(), acct, strict=True):
        hour = rng.normal(14, 4) % 24
        add(t, f"u{ac:04d}", hour * 3600 + rng.uniform(0, 3600) % 3600, None, "benign")
    # campaigns: load-balanced accounts, regular timing
    for name, c in CAMPAIGNS.items():
        pool = payloads.filter(pl.col("source").is_in(c["sources"]))["text"].to_list()
        start = rng.uniform(0, 20_000)
        for i in range(c["prompts"]):
            v = c["variants"][i % len(c["variants"])]
            p = pool[int(rng.integers(len(pool)))]
            add(
                v.format(payload=p),
                f"{name[7:11]}-{int(rng.integers(c['accounts'])):03d}",
                start + i * 350 + rng.uniform(0, 30),
                name,
                "campaign",
            )
    # a legitimate customer: one fixed system prompt, real varied inputs, two API keys
    questions = benign.filter(pl.col("source").str.starts_with("nq_open"))["text"].to_list()
    for i in range(120):
        add(
            LEGIT.format(payload=questions[int(rng.integers(len(questions)))]),
            f"bookshop-{i % 2}",
            rng.uniform(0, 86_400),
            None,
            "legit_templated",
        )
    # organic use of popular shared prompts by unrelated accounts
    popular = shared["text"].gather(rng.choice(shared.height, 4, replace=False)).to_list()
    for _ in range(140):
        add(
            popular[int(rng.integers(4))],
            f"u{int(rng.integers(700, 2000)):04d}",
            rng.uniform(0, 86_400),
            None,
            "organic_template",
        )
    df = pl.DataFrame(rows, infer_schema_length=None).sample(fraction=1.0, shuffle=True, seed=a.seed).sort("timestamp")
    df = df.with_columns(
        pl.format("s{}", pl.int_range(0, pl.len()).cast(pl.String).str.zfill(5)).alias("prompt_id"),
        pl.col("timestamp").dt.cast_time_unit("us"),
    )
    a.out.mkdir(parents=True, exist_ok=True)
    df.select("prompt_id", "account_id", "timestamp", "text").write_parquet(a.out / "sample_day.parquet")
    df.select("prompt_id", "label", "kind", "account_id").write_parquet(a.out / "sample_labels.parquet")
    print(df.group_by("kind").len().sort("kind"))


if __name__ == "__main__":
    main()
