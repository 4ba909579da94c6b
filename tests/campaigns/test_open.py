"""Open families: a stream window's spread counts the accounts that sent a near-miss family earlier today
(campaigns.open)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from clusterer.campaigns.decisions import campaign_features, score_campaigns
from clusterer.campaigns.open import KEY, OpenFamilies, earlier_accounts, next_open
from clusterer.config import CampaignConfig
from clusterer.run.windows import OPEN, OPEN_ACCOUNTS, _open_today, _with_context


def test_a_family_counts_the_open_families_senders_it_does_not_hold_itself():
    # rows 0-1: exemplars of open family A (held by family 0); row 2: an exemplar of B (noise: read by none)
    labels = np.array([0, 0, -1, 0, 0, 1, 1], np.int64)
    accounts = pl.Series(["a1", "a2", "b1", "a1", "n1", "x1", "x2"])
    rows = pl.DataFrame({"_row": [0, 1, 2], KEY: ["w0/A", "w0/A", "w0/B"]})
    senders = pl.DataFrame({KEY: ["w0/A"] * 4 + ["w0/B"] * 2, "account_id": ["a1", "a2", "a3", "a4", "b1", "b2"]})
    got = earlier_accounts(labels, accounts, OpenFamilies(rows, senders))
    # family 0's own rows were sent by a1 and n1 (the exemplars are no rows of its own): a2, a3 and a4 sent A
    # earlier today and nothing of family 0 in the window
    assert got.to_dicts() == [{"cluster_id": 0, "earlier_accounts": 3}]


def _window_of_one_shot_senders(n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    t0 = dt.datetime(2026, 3, 2, 1, tzinfo=dt.timezone.utc)
    df = pl.DataFrame(
        {
            "cluster_id": [0] * n,
            "account_id": [f"c{a}" for a in range(n)],
            "timestamp": [t0 + dt.timedelta(seconds=37 * a) for a in range(n)],
            "key": list(range(n)),
        }
    ).with_columns(pl.col("key").cast(pl.UInt64), pl.col("cluster_id").cast(pl.Int64))
    clusters = pl.DataFrame(
        {"cluster_id": [0], "rigidity": [0.8], "template_coverage": [0.5], "template": ["solve {…} step by step"]}
    )
    return df, clusters


def test_the_spread_reads_the_senders_of_the_day_so_far():
    """60 one-shot senders in the window: the spread reads ln 60 / ln 300; with 240 more that sent the
    family earlier today it reads the day's 300 (full), as a batch run of the day would; no other term moves."""
    df, clusters = _window_of_one_shot_senders(60)
    cfg = CampaignConfig()
    alone = score_campaigns(campaign_features(df, clusters, cfg), cfg)
    extra = pl.DataFrame(
        {"cluster_id": [0], "earlier_accounts": [240]}, schema_overrides={"earlier_accounts": pl.UInt32}
    )
    day = score_campaigns(campaign_features(df, clusters, cfg, None, extra), cfg)
    assert "earlier_accounts" not in alone.columns and day["earlier_accounts"][0] == 240
    assert abs(alone["term_spread"][0] - np.log(60) / np.log(300)) < 1e-9 and day["term_spread"][0] == 1.0
    assert day["effective_accounts"][0] == alone["effective_accounts"][0] == pytest.approx(60.0)
    for t in ("variety", "focus", "one_shot", "synchrony"):
        assert day[f"term_{t}"][0] == alone[f"term_{t}"][0], t
    assert day["campaign_score"][0] > alone["campaign_score"][0]
    # senders that return (two prompts each) show their day through the focus: the spread stays the window's
    twice = df.with_columns(pl.Series("account_id", [f"c{a // 2}" for a in range(60)]))
    back = score_campaigns(campaign_features(twice, clusters, cfg, None, extra), cfg)
    assert back["single_prompt_account_share"][0] == 0.0 and back["earlier_accounts"][0] == 240
    assert abs(back["term_spread"][0] - np.log(30) / np.log(300)) < 1e-9
    # a family holding no open family's exemplar reads 0 earlier senders
    none = pl.DataFrame({"cluster_id": [7], "earlier_accounts": [99]}, schema_overrides={"earlier_accounts": pl.UInt32})
    got = score_campaigns(campaign_features(df, clusters, cfg, None, none), cfg)
    assert got["earlier_accounts"][0] == 0 and got["term_spread"][0] == alone["term_spread"][0]


def _own_rows() -> pl.DataFrame:
    t0 = dt.datetime(2026, 3, 2, 2, tzinfo=dt.timezone.utc)
    n = 30
    return pl.DataFrame(
        {
            "prompt_id": [f"p{i:02d}" for i in range(n)],
            "account_id": [f"u{i % 12}" for i in range(n)],
            "timestamp": [t0 + dt.timedelta(minutes=i) for i in range(n)],
            "text": [f"text {i}" for i in range(n)],
            "cluster_id": [i % 3 if i < 27 else 3 for i in range(n)],  # families 0-2, and 3 (the last three)
        }
    ).with_columns(pl.col("cluster_id").cast(pl.Int64))


def test_near_misses_stay_open_with_their_latest_rows_and_the_day_s_senders():
    cfg = CampaignConfig(window_open_exemplars=3, spread_accounts=3.0)  # at most 2 x 3 senders kept
    families = pl.DataFrame(
        {
            "cluster_id": [0, 1, 2, 3],
            "campaign_score": [0.4, 0.9, 0.05, 0.4],
            "flagged": [False, True, False, False],
            "cohesion": [0.95, 0.95, 0.95, 0.7],
            "template_coverage": [0.5, 0.5, 0.5, 0.2],
            "single_prompt_account_share": [1.0, 1.0, 1.0, 1.0],
        }
    )
    # family 0 held the exemplars of w000/5, sent earlier by e1..e3
    held = pl.DataFrame({KEY: ["20260302-w000/5"], "cluster_id": [0]}).with_columns(pl.col("cluster_id").cast(pl.Int64))
    before = pl.DataFrame({KEY: ["20260302-w000/5"] * 3, "account_id": ["e1", "e2", "e3"]})
    rows, senders = next_open(families, _own_rows(), held, before, "20260302-w001", cfg)
    # only family 0 stays open: 1 is flagged (a campaign now: its exemplars are carried as such), 2 scored
    # low, 3 is loose (one kind of question, not one template)
    assert rows[KEY].unique().to_list() == ["20260302-w001/0"]
    assert rows["prompt_id"].to_list() == ["p18", "p21", "p24"]  # its latest 3, oldest first
    assert "cluster_id" not in rows.columns
    # its senders: its own (u0, u3, u6, u9) and the open family's it held (e1..e3), at most twice spread_accounts
    got = senders[KEY].unique().to_list(), sorted(senders["account_id"].to_list())
    assert got == (["20260302-w001/0"], ["e1", "e2", "e3", "u0", "u3", "u6"])
    # a family whose senders return shows its day through the focus: not kept open
    back = families.with_columns(pl.lit(0.2).alias("single_prompt_account_share"))
    assert next_open(back, _own_rows(), held, before, "20260302-w001", cfg)[0].height == 0
    off = next_open(families, _own_rows(), held, before, "20260302-w001", CampaignConfig(window_open_exemplars=0))
    assert off[0].height == off[1].height == 0


def test_open_exemplars_are_context_after_the_campaigns_and_end_with_their_day():
    win = _own_rows().drop("cluster_id").head(4)
    camp = _own_rows().drop("cluster_id").slice(10, 2).with_columns(pl.lit("cmp-a").alias("_campaign"))
    opened = _own_rows().drop("cluster_id").slice(20, 3).with_columns(pl.lit("20260302-w001/0").alias(KEY))
    opened = pl.concat([opened, win.head(1).with_columns(pl.lit("20260302-w001/0").alias(KEY))])  # one the window holds
    part, n, anchors, rows = _with_context(camp, win, opened)
    assert n == 5 and part.height == 9 and part["prompt_id"][n:].to_list() == win["prompt_id"].to_list()
    assert anchors == {0: "cmp-a", 1: "cmp-a"}
    assert rows.to_dicts() == [{"_row": r, KEY: "20260302-w001/0"} for r in (2, 3, 4)]
    # the next day's first window reads no open family of the day before
    tables = {OPEN: opened, OPEN_ACCOUNTS: pl.DataFrame({KEY: ["20260302-w001/0"], "account_id": ["u0"]})}
    assert _open_today(tables, "20260302-w002")[OPEN].height == 4
    assert all(t.height == 0 for t in _open_today(tables, "20260303-w000").values())


def test_a_window_family_reads_its_own_rows_and_the_open_family_s_senders():
    """Rows 0-9: exemplars of an open family (sent by e0..e9, which also sent it 290 more accounts' worth
    earlier today); rows 10-69: the window's own family, one prompt each from c0..c59. The family's features
    read its 60 own rows (the exemplars are no rows of its own), its spread the day's senders."""
    from clusterer.campaigns.decisions import decide

    df, clusters = _window_of_one_shot_senders(70)
    frame = df.with_columns(pl.Series("account_id", [f"e{i}" for i in range(10)] + [f"c{i}" for i in range(60)]))
    labels = np.zeros(70, np.int64)
    rows = pl.DataFrame({"_row": list(range(10)), KEY: ["20260302-w000/3"] * 10})
    day_senders = [f"e{i}" for i in range(10)] + [f"x{i}" for i in range(290)]
    senders = pl.DataFrame({KEY: ["20260302-w000/3"] * 300, "account_id": day_senders})
    keys = df["key"].to_numpy()
    cfg = CampaignConfig()
    alone = decide(frame.tail(60), labels[10:], keys[10:], clusters, ["k"], cfg).clusters.row(0, named=True)
    got = decide(frame, labels, keys, clusters, ["k"], cfg, open_families=OpenFamilies(rows, senders))
    day = got.clusters.row(0, named=True)
    assert day["prompts"] == alone["prompts"] == 60 and day["effective_accounts"] == pytest.approx(60.0)
    assert day["earlier_accounts"] == 300 and day["term_spread"] == 1.0 > alone["term_spread"]
    assert day["slot_variety"] == alone["slot_variety"] and day["account_focus"] == alone["account_focus"]
    assert day["campaign_score"] > alone["campaign_score"]


def test_an_open_exemplar_is_an_earlier_prompt_of_its_account_marked_held():
    """The decisions read an open family's exemplar as an earlier prompt of its account (the family's rows
    leave it out); the family grouping, which reads it as a row of the window, leaves it out of the earlier
    prompts by the ``held`` mark."""
    from clusterer.config import RunConfig
    from clusterer.run.windows import day_so_far, window_index

    t0 = dt.datetime(2026, 3, 2, 1, tzinfo=dt.timezone.utc)
    frame = pl.DataFrame(
        {
            "prompt_id": ["x1", "x2", "c1", "w1"],
            "account_id": ["a", "a", "b", "a"],
            "timestamp": [t0, t0 + dt.timedelta(minutes=5), t0, t0 + dt.timedelta(hours=1)],
            "text": ["solve 1", "solve 2", "kept as a campaign exemplar", "solve 3"],
        }
    )
    frame = frame.with_columns(window_index(frame["timestamp"], dt.timedelta(hours=1)))
    w = frame["_window"][3]
    win = frame.filter(pl.col("_window") == w)
    got = day_so_far(frame, w, 3600, win, pl.Series(["c1"]), RunConfig(), pl.Series(["x2"]))
    assert got is not None
    assert got.prompts.select("text", "held").rows() == [("solve 1", False), ("solve 2", True)]
    assert got.totals.row(0, named=True)["prev_total"] == 2
