from __future__ import annotations

import polars as pl
import pytest

from clusterer import synth
from clusterer.accel.backend import Backend, gpu_count
from clusterer.config import load_config


def pytest_collection_modifyitems(config, items):
    if gpu_count() == 0:
        skip = pytest.mark.skip(reason="no CUDA device visible")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(params=[Backend.CPU, pytest.param(Backend.GPU, marks=pytest.mark.gpu)], ids=str)
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def day() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A small seeded day (traffic, labels) with two campaigns."""
    return synth.fake_day(seed=7)


@pytest.fixture()
def day_file(tmp_path, day):
    path = tmp_path / "day.parquet"
    day[0].write_parquet(path)
    return path


@pytest.fixture()
def fast_cfg(tmp_path):
    """Config with the model-free hashing encoder and a private cache."""

    def make(**over):
        base = {"embed.model": "hashing", "embed.cache_dir": str(tmp_path / "cache"), "quiet": True, "device": "cpu"}
        base.update(over)
        return load_config(None, **base)

    return make


@pytest.fixture(scope="session")
def report_run(tmp_path_factory):
    """A finished run (hashing model) over the bundled sample day plus `org_id` and `account_created_at`
    columns, so every section of the HTML report has something to show. Returns the run directory."""
    import datetime as dt
    from pathlib import Path

    from clusterer import api

    root = tmp_path_factory.mktemp("report_run")
    day = pl.read_parquet(Path(__file__).resolve().parent.parent / "data" / "sample_day.parquet")
    # campaign accounts (names with a dash and a number) are days old, everyone else years old
    fresh = pl.col("account_id").str.contains(r"^[a-z]+-\d+$")
    day = day.with_columns(
        pl.when(fresh)
        .then(pl.lit("org-") + pl.col("account_id"))
        .otherwise(pl.lit("org-") + pl.col("account_id").str.slice(0, 3))
        .alias("org_id"),
        pl.when(fresh)
        .then(pl.col("timestamp") - pl.duration(days=3))
        .otherwise(pl.lit(dt.datetime(2023, 5, 1, tzinfo=dt.timezone.utc)))
        .alias("account_created_at"),
    )
    logs = root / "day.parquet"
    day.write_parquet(logs)
    cfg = load_config(None, **{"embed.model": "hashing", "embed.cache_dir": "none", "quiet": True, "device": "cpu"})
    api.run([logs], root / "out", cfg)
    return root / "out"
