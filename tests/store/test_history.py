import datetime as dt

import numpy as np
import polars as pl
import pytest

from clusterer import api, synth
from clusterer.errors import ConfigError, InputError
from clusterer.store.history import VECTOR_OF_ROW, VECTORS, HistoryConfig, add_day, history_stats


def _run(tmp_path, name, cfg, history=None, **day_kw):
    traffic, labels = synth.fake_day(**day_kw)
    path = tmp_path / f"{name}.parquet"
    traffic.write_parquet(path)
    out = tmp_path / name
    api.run([path], out, cfg, history=history)
    return out, labels


def test_run_saves_its_distinct_vectors(tmp_path, fast_cfg):
    out, _ = _run(tmp_path, "d1", fast_cfg(), seed=1)
    vecs = np.load(out / VECTORS)
    of_row = np.load(out / VECTOR_OF_ROW)
    a = pl.read_parquet(out / "assignments.parquet")
    assert vecs.dtype == np.float16 and len(of_row) == a.height
    assert of_row.max() == len(vecs) - 1
    assert ((of_row >= 0) == (a["status"] != "empty_text").to_numpy()).all()


def test_history_marks_continuing_campaigns_and_not_new_ones(tmp_path, fast_cfg):
    cfg = fast_cfg()
    d1, _ = _run(tmp_path, "d1", cfg, seed=1, campaign_sizes=(80,), scaffolds=(0,), day=1)
    index = tmp_path / "hist"
    entry = add_day(d1, index, HistoryConfig(nlist=16))
    assert entry["day"] == "2026-11-01" and entry["vectors"] > 0
    st = history_stats(index)
    assert st["days"] == 1 and st["vectors"] == entry["vectors"] and st["bytes_per_vector"] > 0
    with pytest.raises(InputError, match="already in"):
        add_day(d1, index)
    # a re-run of the same input (another run, same files) would count the day's prompts twice
    again = tmp_path / "d1_again"
    api.run([tmp_path / "d1.parquet"], again, cfg)
    with pytest.raises(InputError, match=r"read the same input files as run d1 of 2026-11-01 .*count twice"):
        add_day(again, index)
    assert history_stats(index)["days"] == 1
    # day 2: the same campaign continues, a new one starts
    d2, labels = _run(tmp_path, "d2", cfg, history=index, seed=2, campaign_sizes=(80, 60), scaffolds=(0, 1), day=2)
    a = pl.read_parquet(d2 / "assignments.parquet").join(labels, on="prompt_id")
    cl = pl.read_parquet(d2 / "clusters.parquet")
    assert {"history_first_seen", "history_days", "history_near_duplicates", "history_campaign_id"} <= set(cl.columns)

    def main_cluster(label):
        return a.filter(pl.col("label") == label)["cluster_id"].mode()[0]

    old = cl.filter(pl.col("cluster_id") == main_cluster("campaign_0")).row(0, named=True)
    new = cl.filter(pl.col("cluster_id") == main_cluster("campaign_1")).row(0, named=True)
    assert old["history_days"] == 1 and old["history_first_seen"] == dt.date(2026, 11, 1)
    assert old["history_near_duplicates"] > 0
    assert new["history_days"] == 0 and new["history_first_seen"] is None


def test_history_refuses_another_model(tmp_path, fast_cfg):
    d1, _ = _run(tmp_path, "d1", fast_cfg(), seed=1)
    index = tmp_path / "hist"
    add_day(d1, index, HistoryConfig(nlist=16))
    d2, _ = _run(tmp_path, "d2", fast_cfg(**{"embed.max_tokens": 32}), seed=2, day=2)
    with pytest.raises(ConfigError, match="holds"):
        add_day(d2, index)
    with pytest.raises(InputError, match="missing"):
        add_day(tmp_path, index)


def test_a_damaged_or_unusable_history_is_refused_before_any_work(tmp_path, fast_cfg):
    """A history file missing or cut short is named when a run or `history add` opens the folder (before:
    tracebacks after the whole clustering); a first day too small to train the index, a run without clustered
    rows and a file given as the folder are refused without writing anything."""
    import shutil

    cfg = fast_cfg()
    d1, _ = _run(tmp_path, "d1", cfg, seed=1)
    index = tmp_path / "hist"
    add_day(d1, index, HistoryConfig(nlist=16))
    traffic, _ = synth.fake_day(seed=2, day=2)
    traffic.write_parquet(tmp_path / "d2.parquet")
    for name, damage in (
        ("history.json", lambda p: p.write_text('{"days": [')),
        ("days/000000.faiss", lambda p: p.unlink()),
        ("days/000000.faiss", lambda p: p.write_bytes(p.read_bytes()[:900])),
        ("days/000000.parquet", lambda p: p.write_bytes(p.read_bytes()[:100])),
        ("trained.faiss", lambda p: p.unlink()),
    ):
        broken = tmp_path / "broken"
        shutil.rmtree(broken, ignore_errors=True)
        shutil.copytree(index, broken)
        damage(broken / name)
        with pytest.raises(InputError, match=r"history .*broken.*(damaged|no history.json)"):
            api.cluster([tmp_path / "d2.parquet"], cfg, history=broken)
        with pytest.raises(InputError, match=r"history .*broken"):
            add_day(d1, broken)
    small = pl.read_parquet(tmp_path / "d2.parquet").head(40)
    api.run(small, tmp_path / "small", cfg)
    with pytest.raises(InputError, match="needs at least 256"):
        add_day(tmp_path / "small", tmp_path / "new")
    assert not (tmp_path / "new").exists()
    api.run(small.head(0), tmp_path / "empty", cfg)
    with pytest.raises(InputError, match="no dated vectors"):
        add_day(tmp_path / "empty", index)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        add_day(d1, tmp_path / "afile")
