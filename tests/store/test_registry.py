import polars as pl
import pytest

from clusterer import api, synth
from clusterer.api import assign
from clusterer.errors import InputError
from clusterer.store.registry import load_registry


def _day(tmp_path, day, scaffolds, seed):
    traffic, labels = synth.fake_day(
        seed=seed, campaign_sizes=(90,) * len(scaffolds), scaffolds=scaffolds, day=day, accounts_per_campaign=15
    )
    path = tmp_path / f"day{day}.parquet"
    traffic.write_parquet(path)
    return path, labels


def _ids(out, labels):
    a = pl.read_parquet(out / "assignments.parquet").join(labels, on="prompt_id")
    got = (
        a.filter(pl.col("campaign_id").is_not_null() & pl.col("label").is_not_null())
        .group_by("label")
        .agg(pl.col("campaign_id").mode().first())
    )
    return dict(got.iter_rows())


def test_campaign_ids_are_stable_across_days_and_new_campaigns_get_new_ids(tmp_path, fast_cfg):
    reg = tmp_path / "registry"
    cfg = fast_cfg()
    p1, l1 = _day(tmp_path, 1, (0, 1), seed=1)  # campaigns 0 and 1
    p2, l2 = _day(tmp_path, 2, (0, 2), seed=2)  # 0 continues (new payloads), 1 ends, 2 starts
    api.run([p1], tmp_path / "r1", cfg, registry=reg)
    ids1 = _ids(tmp_path / "r1", l1)
    assert set(ids1) == {"campaign_0", "campaign_1"} and len(set(ids1.values())) == 2
    api.run([p2], tmp_path / "r2", cfg, registry=reg)
    ids2 = _ids(tmp_path / "r2", l2)
    assert ids2["campaign_0"] == ids1["campaign_0"]
    assert ids2["campaign_2"] not in ids1.values()
    known = load_registry(reg).campaigns
    row = {r["campaign_id"]: r for r in known.iter_rows(named=True)}
    assert row[ids1["campaign_0"]]["days_seen"] == 2 and str(row[ids1["campaign_0"]]["first_seen"]) == "2026-11-01"
    assert row[ids1["campaign_1"]]["days_seen"] == 1 and str(row[ids1["campaign_1"]]["last_seen"]) == "2026-11-01"
    # re-running day 2 does not count it twice
    rows_before = load_registry(reg).daily.height
    api.run([p2], tmp_path / "r2b", cfg, registry=reg)
    again = {r["campaign_id"]: r for r in load_registry(reg).campaigns.iter_rows(named=True)}
    assert again[ids1["campaign_0"]]["days_seen"] == 2
    assert load_registry(reg).daily.height == rows_before


def test_assign_labels_late_prompts_of_known_campaigns(tmp_path, fast_cfg):
    reg = tmp_path / "registry"
    p1, l1 = _day(tmp_path, 1, (0, 1), seed=3)
    api.run([p1], tmp_path / "r1", fast_cfg(), registry=reg)
    ids1 = _ids(tmp_path / "r1", l1)
    p2, l2 = _day(tmp_path, 2, (0, 2), seed=4)
    res = assign([p2], reg, fast_cfg())
    res.write(tmp_path / "assigned.parquet")
    n, hits = res.manifest["prompts"], res.manifest["matched"]
    got = pl.read_parquet(tmp_path / "assigned.parquet").join(l2, on="prompt_id")
    assert n == got.height
    c0 = got.filter(pl.col("label") == "campaign_0")
    assert (c0["campaign_id"] == ids1["campaign_0"]).mean() >= 0.95
    assert got.filter(pl.col("label") == "campaign_2")["campaign_id"].is_null().all()
    assert got.filter(pl.col("kind") == "benign")["campaign_id"].is_null().mean() >= 0.995
    assert hits == int(got["campaign_id"].is_not_null().sum())


def test_assign_needs_a_registry_with_campaigns(tmp_path, fast_cfg):
    p1, _ = _day(tmp_path, 1, (0,), seed=5)
    with pytest.raises(InputError, match="does not exist"):
        assign([p1], tmp_path / "absent", fast_cfg())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no campaigns"):
        assign([p1], tmp_path / "empty", fast_cfg())


def test_corrupt_registry_is_reported(tmp_path):
    reg = tmp_path / "reg"
    reg.mkdir()
    (reg / "campaigns.parquet").write_bytes(b"not parquet")
    pl.DataFrame({"x": [1]}).write_parquet(reg / "daily.parquet")
    with pytest.raises(InputError, match="cannot be read"):
        load_registry(reg)
    pl.DataFrame({"x": [1]}).write_parquet(reg / "campaigns.parquet")
    with pytest.raises(InputError, match="lacks columns"):
        load_registry(reg)


def test_a_day_without_families_runs_with_a_registry(tmp_path, fast_cfg):
    """A day too small or quiet for any family (3 prompts) runs with a registry instead of failing: the known
    campaigns stay as they were and the day adds no daily rows; a new registry is written empty. A re-run of
    a day that finds nothing replaces that day's rows like any re-run (its families' rows, none)."""
    reg, cfg = tmp_path / "registry", fast_cfg()
    p1, l1 = _day(tmp_path, 1, (0,), seed=6)
    api.run([p1], tmp_path / "r1", cfg, registry=reg)
    before = load_registry(reg)
    assert before.campaigns.height >= 1
    tiny = pl.read_parquet(_day(tmp_path, 2, (0,), seed=7)[0]).head(3)
    tiny.write_parquet(tmp_path / "tiny.parquet")
    api.run([tmp_path / "tiny.parquet"], tmp_path / "r2", cfg, registry=reg)
    after = load_registry(reg)
    assert after.campaigns.equals(before.campaigns) and after.daily.equals(before.daily)
    assert pl.read_parquet(tmp_path / "r2" / "assignments.parquet").height == 3
    api.run([tmp_path / "tiny.parquet"], tmp_path / "r3", cfg, registry=tmp_path / "fresh")
    assert load_registry(tmp_path / "fresh").campaigns.height == 0
    api.run(pl.read_parquet(p1).head(3), tmp_path / "r4", cfg, registry=reg)  # day 1 again, nothing found
    assert load_registry(reg).daily.filter(pl.col("day") == before.daily["day"][0]).height == 0


def test_a_registry_refuses_another_model_of_the_same_dimension(tmp_path, fast_cfg):
    """The registry records the model key of its centroids: a run whose encoder differs is refused before
    its campaigns are compared with centroids of another embedding, though the dimension is the same."""
    import json

    reg = tmp_path / "registry"
    p1, _ = _day(tmp_path, 1, (0,), seed=8)
    p2, _ = _day(tmp_path, 2, (0,), seed=9)
    api.run([p1], tmp_path / "r1", fast_cfg(), registry=reg)
    key = json.loads((reg / "manifest.json").read_text())["model_key"]
    assert key == json.loads((tmp_path / "r1" / "manifest.json").read_text())["embedding"]["model_key"]
    with pytest.raises(InputError, match=f"holds campaigns embedded with {key}"):
        api.run([p2], tmp_path / "r2", fast_cfg(**{"embed.max_tokens": 32}), registry=reg)
    api.run([p2], tmp_path / "r3", fast_cfg(), registry=reg)  # the same model goes on
    assert json.loads((reg / "manifest.json").read_text())["model_key"] == key


def test_a_short_variants_prompt_is_assigned_by_its_own_scaffold_not_the_share_of_the_whole_set(tmp_path, monkeypatch):
    import datetime as dt

    import numpy as np

    from clusterer.store.registry import (
        CAMPAIGN_SCHEMA,
        DAILY_SCHEMA,
        Registry,
        assign_to_known,
        assign_to_known_both,
        save_registry,
    )

    long_a, short_a, b = list(range(100)), list(range(200, 208)), list(range(300, 340))
    camps = pl.DataFrame(
        {
            "campaign_id": ["a", "b"],
            "first_seen": [dt.date(2026, 11, 1)] * 2,
            "last_seen": [dt.date(2026, 11, 1)] * 2,
            "days_seen": [1, 1],
            "prompts_total": [9, 9],
            "template": ["t", "u"],
            "centroid": [[1.0, 0.0]] * 2,
            "shingles": [[1], [2]],
            "scaffold_shingles": [long_a + short_a, b],
            "merged_into": [None, None],
            "scaffold_variants": [[long_a, short_a], None],
        },
        schema=CAMPAIGN_SCHEMA,
    )
    daily = pl.DataFrame(
        {
            "campaign_id": ["a", "b"],
            "day": [dt.date(2026, 11, 1)] * 2,
            "prompts": [9, 9],
            "accounts": [3, 3],
            "campaign_score": [1.0, 1.0],
        },
        schema=DAILY_SCHEMA,
    )
    reg = Registry(campaigns=camps, daily=daily)
    rows = [
        short_a + [999],  # the short variant: 8 of a's 108 shingles (7%), all of its own scaffold
        short_a[:7] + b[:10],  # holds 10 of b's 40 and 7 of a's short 8: the most shared wins
        long_a[:5] + [998],  # too few shingles of any scaffold
        [5000, 5001],  # nothing known
        long_a[:15] + b[:9],  # shares most with a (15 of 100 and of 108: too few) and qualifies for b: neither
    ]
    indptr = np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64)
    hashes = np.concatenate([np.unique(np.asarray(r, np.uint64)) for r in rows])
    ids, cont = assign_to_known(reg, indptr, hashes, 0.2, 6, variants=True)
    assert ids == ["a", "b", None, None, None]
    assert cont[0] == 1.0 and cont[1] == 0.25 and cont[3] == 0.0
    # without the variants (a registry of an earlier version) the short variant holds too small a share
    old = Registry(
        campaigns=camps.with_columns(pl.lit(None, CAMPAIGN_SCHEMA["scaffold_variants"]).alias("scaffold_variants")),
        daily=daily,
    )
    assert assign_to_known(old, indptr, hashes, 0.2, 6, variants=True)[0] == [None, "b", None, None, None]
    # and `clusterer assign` reads the whole sets alone (a variant's scaffold can be generic)
    assert assign_to_known(reg, indptr, hashes, 0.2, 6)[0] == [None, "b", None, None, None]
    # a stream window reads both answers from one lookup of the shingles
    assert assign_to_known_both(reg, indptr, hashes, 0.2, 6) == (
        [None, "b", None, None, None],
        ["a", "b", None, None, None],
    )
    assert assign_to_known_both(old, indptr, hashes, 0.2, 6) == ([None, "b", None, None, None],) * 2
    # the prompts are matched a block at a time (two here): the same answers and containments
    monkeypatch.setattr("clusterer.store.registry._ROW_BLOCK", 2)
    ids2, cont2 = assign_to_known(reg, indptr, hashes, 0.2, 6, variants=True)
    assert ids2 == ids and np.array_equal(cont2, cont)
    assert assign_to_known_both(reg, indptr, hashes, 0.2, 6)[1] == ids
    # the variants are written and read back
    save_registry(tmp_path / "reg", reg)
    assert load_registry(tmp_path / "reg").campaigns["scaffold_variants"].to_list() == [[long_a, short_a], None]
