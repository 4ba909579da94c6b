from __future__ import annotations

import polars as pl
import pytest

from clusterer import synth
from clusterer.backend import Backend, gpu_count
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
