"""The measuring scripts a user runs from ``scripts/`` (loaded from the checkout, not installed)."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import polars as pl

from clusterer import synth

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write(tmp_path: Path, name: str, seed: int, day: int) -> Path:
    traffic, labels = synth.fake_day(seed=seed, day=day)
    traffic = traffic.with_columns(pl.lit("org").alias("org_id"))
    d = tmp_path / name
    d.mkdir()
    traffic.write_parquet(d / "traffic.parquet")
    labels.write_parquet(d / "labels.parquet")
    return d


def test_mixed_days_keep_every_prompt_on_one_date_and_nothing_collides(tmp_path):
    mix_days = _script("mix_days")
    a, b = _write(tmp_path, "a", seed=1, day=1), _write(tmp_path, "b", seed=1, day=7)  # same IDs, other dates
    ta, tb = pl.read_parquet(a / "traffic.parquet"), pl.read_parquet(b / "traffic.parquet")
    traffic, labels = mix_days.mix([a, b])
    assert traffic.height == labels.height == ta.height + tb.height
    assert traffic["prompt_id"].n_unique() == traffic.height
    assert set(traffic["prompt_id"]) == set(labels["prompt_id"])
    # the two sources' accounts and campaigns stay apart, though the inputs share their names
    assert traffic["account_id"].n_unique() == ta["account_id"].n_unique() + tb["account_id"].n_unique()
    assert traffic["org_id"].n_unique() == 2
    camp = labels.filter(pl.col("kind") == "campaign")["label"]
    assert (
        camp.n_unique()
        == 2
        * ta.join(pl.read_parquet(a / "labels.parquet"), on="prompt_id")
        .filter(pl.col("kind") == "campaign")["label"]
        .n_unique()
    )
    # one date, times of day kept, in time order
    assert traffic["timestamp"].dt.date().unique().to_list() == [dt.date(2026, 11, 1)]
    moved = traffic.filter(pl.col("prompt_id").str.starts_with("s1_")).sort("prompt_id")["timestamp"]
    assert (moved.dt.time() == tb.sort("prompt_id")["timestamp"].dt.time()).all()
    assert traffic["timestamp"].is_sorted()
    # a sample keeps labels and traffic aligned
    part_t, part_l = mix_days.mix([a, b], fraction=0.5, seed=2)
    assert 0 < part_t.height < traffic.height and set(part_t["prompt_id"]) == set(part_l["prompt_id"])
