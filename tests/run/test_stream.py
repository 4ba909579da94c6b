"""Incremental detection: `clusterer stream` (run.windows)."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest
from typer.testing import CliRunner

from clusterer import synth
from clusterer.cli import app
from clusterer.errors import InputError
from clusterer.run.windows import merge_day, parse_every
from clusterer.store.registry import CAMPAIGN_SCHEMA, DAILY_SCHEMA, Registry, load_registry

OPTS = ["--model", "hashing", "--device", "cpu", "-q"]


def test_parse_every():
    assert parse_every("1h") == dt.timedelta(hours=1) and parse_every("15m") == dt.timedelta(minutes=15)
    for bad in ("7m", "1d", "h", "-1h", "abc"):
        with pytest.raises(InputError, match="--window"):
            parse_every(bad)


def _reg(rows: list[tuple[str, dt.date, int]]) -> Registry:
    daily = pl.DataFrame(
        {
            "campaign_id": [r[0] for r in rows],
            "day": [r[1] for r in rows],
            "prompts": [r[2] for r in rows],
            "accounts": [1] * len(rows),
            "campaign_score": [0.9] * len(rows),
        },
        schema=DAILY_SCHEMA,
    )
    ids = sorted({r[0] for r in rows})
    camps = pl.DataFrame(
        {
            "campaign_id": ids,
            "first_seen": [dt.date(2026, 11, 1)] * len(ids),
            "last_seen": [dt.date(2026, 11, 1)] * len(ids),
            "days_seen": [1] * len(ids),
            "prompts_total": [0] * len(ids),
            "template": [f"t {i}" for i in ids],
            "centroid": [[1.0, 0.0]] * len(ids),
            "shingles": [[1, 2]] * len(ids),
            "scaffold_shingles": [[1, 2]] * len(ids),
        },
        schema=CAMPAIGN_SCHEMA,
    )
    return Registry(campaigns=camps, daily=daily)


def test_merge_day_sums_the_windows_and_keeps_earlier_campaigns():
    d0, d1 = dt.date(2026, 10, 31), dt.date(2026, 11, 1)
    prev = _reg([("a", d0, 50), ("a", d1, 10), ("b", d1, 7)])
    # the window's own registry: its day rows replaced by the window's, b (not seen) dropped
    new = _reg([("a", d0, 50), ("a", d1, 4), ("c", d1, 3)])
    m = merge_day(prev, new, d1)
    daily = {(r["campaign_id"], r["day"]): r["prompts"] for r in m.daily.iter_rows(named=True)}
    assert daily == {("a", d0): 50, ("a", d1): 14, ("b", d1): 7, ("c", d1): 3}
    c = {r["campaign_id"]: r for r in m.campaigns.iter_rows(named=True)}
    assert set(c) == {"a", "b", "c"} and c["a"]["prompts_total"] == 64 and c["a"]["days_seen"] == 2
    assert m.campaigns.schema == pl.Schema(CAMPAIGN_SCHEMA)
    # a campaign keeps the scaffold shingles of every window (the variants it ran)
    new = Registry(
        campaigns=new.campaigns.with_columns(pl.Series("scaffold_shingles", [[2, 3], [9]], pl.List(pl.UInt64))),
        daily=new.daily,
    )
    c = {r["campaign_id"]: r for r in merge_day(prev, new, d1).campaigns.iter_rows(named=True)}
    assert c["a"]["scaffold_shingles"] == [1, 2, 3] and c["c"]["scaffold_shingles"] == [9]


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stream")
    traffic, labels = synth.fake_day(
        seed=3, campaign_sizes=(240, 200), accounts_per_campaign=15, n_benign=1500, n_benign_accounts=400
    )
    path = tmp / "day.parquet"
    traffic.write_parquet(path)
    args = ["stream", str(path), "--out", str(tmp / "out"), "--registry", str(tmp / "reg"), "--window", "12h"]
    res = CliRunner().invoke(app, [*args, *OPTS, "--cache-dir", str(tmp / "cache")])
    assert res.exit_code == 0, res.output
    return tmp, traffic, labels, args


def _windows(out):
    state = json.loads((out / "stream.json").read_text())
    return state, pl.concat([pl.read_parquet(out / w["dir"] / "assignments.parquet") for w in state["windows"]])


def test_every_prompt_once_and_a_campaign_keeps_one_id(streamed):
    tmp, traffic, labels, _ = streamed
    state, asg = _windows(tmp / "out")
    assert len(state["windows"]) == 2
    assert sorted(asg["prompt_id"].to_list()) == sorted(traffic["prompt_id"].to_list())
    df = asg.join(labels, on="prompt_id")
    camp = df.filter(pl.col("kind") == "campaign")
    per = camp.group_by("label").agg(pl.col("flagged").mean(), pl.col("campaign_id").drop_nulls().n_unique())
    for r in per.iter_rows(named=True):
        assert r["flagged"] > 0.9 and r["campaign_id"] == 1, r
    # the second window kept the campaigns the first one flagged
    assert set(state["windows"][1]["kept_campaigns"]) == set(state["windows"][0]["campaigns"]) != set()
    reg = load_registry(tmp / "reg")
    assert set(reg.campaigns["campaign_id"]) >= set(camp["campaign_id"].drop_nulls())
    assert reg.daily["prompts"].sum() == int(
        pl.concat([pl.read_parquet(tmp / "out" / w["dir"] / "clusters.parquet") for w in state["windows"]])
        .filter(pl.col("flagged"))["size"]
        .sum()
    )


def test_restart_goes_on_after_the_windows_done(streamed):
    tmp, _, _, args = streamed
    out = tmp / "out"
    state = json.loads((out / "stream.json").read_text())
    before = pl.read_parquet(out / state["windows"][0]["dir"] / "assignments.parquet")
    state["windows"] = state["windows"][:1]  # as if the stream stopped after the first window
    (out / "stream.json").write_text(json.dumps(state))
    res = CliRunner().invoke(app, [*args, *OPTS, "--cache-dir", str(tmp / "cache")])
    assert res.exit_code == 0, res.output
    after, _ = _windows(out)
    assert len(after["windows"]) == 2 and after["windows"][0] == state["windows"][0]
    assert pl.read_parquet(out / state["windows"][0]["dir"] / "assignments.parquet").equals(before)
    # a stream.json of another window length is refused
    res = CliRunner().invoke(app, [*args[:-1], "6h", *OPTS])
    assert res.exit_code == 2 and "another stream" in res.output


def test_anchors_name_the_cluster_they_sit_in():
    import numpy as np

    from clusterer.run.stages import anchored_campaigns

    labels = np.array([0, 0, 0, 0, 1, 1, 1, -1, 2, 2, 2, 2])
    anchors = {0: "a", 1: "a", 2: "a", 3: "b", 4: "a", 5: "b", 7: "a", 8: "c", 9: "c", 10: "d", 11: "d"}
    # cluster 0: three of four anchors are a; cluster 1: a split (1 a, 1 b); cluster 2: a tie; noise ignored
    assert anchored_campaigns(labels, anchors) == {0: "a"}
    assert anchored_campaigns(labels, anchors, min_anchors=1) == {0: "a"}  # splits and ties name nothing
    assert anchored_campaigns(labels, {4: "a", 5: "a"}, min_anchors=2) == {1: "a"}
    assert anchored_campaigns(labels, {4: "a", 5: "a"}) == {}  # fewer than three anchors


def test_next_carry_keeps_the_latest_flagged_prompts_per_campaign():
    from clusterer.run.windows import CAMPAIGN, next_carry

    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    win = pl.DataFrame(
        {"prompt_id": [f"p{i}" for i in range(6)], "timestamp": [t0 + dt.timedelta(minutes=i) for i in range(6)]}
    )
    asg = pl.DataFrame(
        {
            "prompt_id": [f"p{i}" for i in range(6)],
            "flagged": [True, True, True, False, True, True],
            "campaign_id": ["x", "x", "x", None, "y", None],
        }
    )
    carry = next_carry(None, win, asg, per_campaign=2)
    assert carry.filter(pl.col(CAMPAIGN) == "x")["prompt_id"].to_list() == ["p1", "p2"]
    assert carry.filter(pl.col(CAMPAIGN) == "y")["prompt_id"].to_list() == ["p4"] and carry.height == 3
    later = win.with_columns(pl.col("prompt_id") + "b", pl.col("timestamp") + dt.timedelta(hours=1))
    carry2 = next_carry(carry, later, asg.with_columns(pl.col("prompt_id") + "b"), per_campaign=2)
    assert carry2.filter(pl.col(CAMPAIGN) == "x")["prompt_id"].to_list() == ["p1b", "p2b"]
