"""Incremental detection: `clusterer stream` (run.windows)."""

from __future__ import annotations

import datetime as dt
import json
import shutil

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


def test_window_folders_sort_in_time_order_at_any_window_length():
    from pathlib import Path

    from clusterer.run.windows import _window_dir

    day0 = 20_000 * 86_400  # a day's first second since 1970
    for sec in (5, 60, 3600):
        names = [_window_dir(Path("o"), day0 // sec + w, sec).name for w in range(0, 86_400 // sec, 7)]
        assert names == sorted(names) and len({len(n) for n in names}) == 1, sec
    assert _window_dir(Path("o"), day0 // 3600 + 5, 3600).name.endswith("-w005")


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
            "merged_into": [None] * len(ids),
            "scaffold_variants": [None] * len(ids),  # as in a registry of an earlier version
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
    # carried exemplars a window's family held were counted by an earlier window: not again
    m = merge_day(prev, new, d1, {"a": 3, "c": 9, "z": 5})
    daily = {(r["campaign_id"], r["day"]): r["prompts"] for r in m.daily.iter_rows(named=True)}
    assert daily == {("a", d0): 50, ("a", d1): 11, ("b", d1): 7, ("c", d1): 0}
    assert m.daily.schema == pl.Schema(DAILY_SCHEMA)
    # the window's accounts are its own prompts' senders when given (the families' counts include the
    # exemplars'): a campaign the window's own prompts do not reach counts none
    m = merge_day(prev, new, d1, {"a": 3, "c": 9}, {"a": 2})
    accounts = {(r["campaign_id"], r["day"]): r["accounts"] for r in m.daily.iter_rows(named=True)}
    assert accounts[("a", d1)] == 1 + 2 and accounts[("c", d1)] == 0 and accounts[("b", d1)] == 1
    # a campaign keeps the scaffold shingles of every window (the variants it ran)
    new = Registry(
        campaigns=new.campaigns.with_columns(pl.Series("scaffold_shingles", [[2, 3], [9]], pl.List(pl.UInt64))),
        daily=new.daily,
    )
    c = {r["campaign_id"]: r for r in merge_day(prev, new, d1).campaigns.iter_rows(named=True)}
    assert c["a"]["scaffold_shingles"] == [1, 2, 3] and c["c"]["scaffold_shingles"] == [9]
    # and each variant's scaffold apart: earlier windows' first, one found again not kept twice
    v = pl.List(pl.List(pl.UInt64))
    short, long = list(range(10, 18)), list(range(100, 140))
    prev = Registry(
        campaigns=prev.campaigns.with_columns(pl.Series("scaffold_variants", [[long], None], v)), daily=prev.daily
    )
    again = list(range(100, 139))  # Jaccard 39/40 with the kept one
    new = Registry(
        campaigns=new.campaigns.with_columns(pl.Series("scaffold_variants", [[again, short, []], [[9]]], v)),
        daily=new.daily,
    )
    c = {r["campaign_id"]: r for r in merge_day(prev, new, d1).campaigns.iter_rows(named=True)}
    assert c["a"]["scaffold_variants"] == [long, short] and c["b"]["scaffold_variants"] is None
    assert c["c"]["scaffold_variants"] == [[9]]


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
    sets = [pl.read_parquet(out / w["dir"] / "assignments.parquet") for w in state["windows"]]
    return state, pl.concat(sets, how="diagonal_relaxed")  # a later window may carry a column a part file added


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
    # the day's prompts per campaign: its families' own prompts, each window's carried exemplars not again
    # (the second window's flagged clusters hold exemplars the first one counted)
    own = asg.filter(pl.col("campaign_id").is_not_null()).group_by("campaign_id").len()
    daily = reg.daily.select("campaign_id", pl.col("prompts").cast(pl.UInt32).alias("len"))
    assert daily.sort("campaign_id").equals(own.sort("campaign_id"))
    flagged_sizes = pl.concat([pl.read_parquet(tmp / "out" / w["dir"] / "clusters.parquet") for w in state["windows"]])
    assert state["windows"][1]["carried_exemplars"] > 0
    # the open families (campaigns.open) are carried state too, counted per window
    assert all({"open_exemplars", "open_bytes"} <= set(w) for w in state["windows"])
    assert (tmp / "out" / "open.parquet").is_file() and (tmp / "out" / "open_accounts.parquet").is_file()
    assert reg.daily["prompts"].sum() < flagged_sizes.filter(pl.col("flagged"))["size"].sum()
    # the day's accounts per campaign: each window's own senders (not the exemplars'), summed over windows —
    # at least the day's distinct senders, never more than its prompts
    per_window = [
        pl.read_parquet(tmp / "out" / w["dir"] / "assignments.parquet")
        .filter(pl.col("campaign_id").is_not_null())
        .group_by("campaign_id")
        .agg(pl.col("account_id").n_unique().alias("n"))
        for w in state["windows"]
    ]
    summed = pl.concat(per_window).group_by("campaign_id").agg(pl.col("n").sum())
    day_accounts = (
        asg.filter(pl.col("campaign_id").is_not_null())
        .group_by("campaign_id")
        .agg(pl.col("account_id").n_unique().alias("distinct"))
    )
    got = reg.daily.join(summed, on="campaign_id").join(day_accounts, on="campaign_id")
    assert got.height == reg.daily.height > 0
    assert (got["accounts"] == got["n"]).all() and (got["accounts"] >= got["distinct"]).all()
    assert (got["accounts"] <= got["prompts"]).all()
    # each window's manifest counts its own prompts, as its assignments do
    for w in state["windows"]:
        m = json.loads((tmp / "out" / w["dir"] / "manifest.json").read_text())
        a = pl.read_parquet(tmp / "out" / w["dir"] / "assignments.parquet")
        assert m["rows"]["in"] == m["rows"]["out"] == a.height == w["rows"]
        assert m["rows"]["clustered"] + m["rows"]["noise"] <= a.height
        # the campaigns merged by the lines their families lend each other are among the window's merges
        assert set(m["stream"]["merged_by_lines"]) <= set(m["stream"]["merged_campaigns"])


def test_a_windows_tables_count_its_own_prompts_and_add_up_to_the_day(streamed):
    tmp, traffic, _, _ = streamed
    state, asg = _windows(tmp / "out")
    accounts, operators = [], []
    for w in state["windows"]:
        d = tmp / "out" / w["dir"]
        own = pl.read_parquet(d / "assignments.parquet")
        cl = pl.read_parquet(d / "clusters.parquet")
        acc = pl.read_parquet(d / "accounts.parquet")
        ops = pl.read_parquet(d / "operators.parquet")
        # a cluster's size less its exemplars is its prompts in the window's assignments
        per = own.filter(pl.col("cluster_id") >= 0).group_by("cluster_id").len()
        got = cl.join(per, on="cluster_id", how="left").with_columns(pl.col("len").fill_null(0))
        assert (got["size"] - got["exemplars"] == got["len"]).all()
        if w["carried_exemplars"] + w["open_exemplars"] == 0:
            assert cl["exemplars"].sum() == 0
        # a cluster's exemplar prompt is one of its own prompts in the window (it joins the assignments)
        ex = cl.filter(pl.col("size") > pl.col("exemplars")).select("cluster_id", pl.col("exemplar_prompt_id"))
        hit = ex.join(own.select("prompt_id", "cluster_id"), left_on="exemplar_prompt_id", right_on="prompt_id")
        assert (hit["cluster_id"] == hit["cluster_id_right"]).all() and hit.height == ex.height
        # the accounts are the window's senders, counted and flagged by their prompts in the window
        mine = own.group_by("account_id").agg(
            pl.len().alias("n"), pl.col("flagged").any().alias("f"), pl.col("timestamp").min().alias("t")
        )
        both = acc.join(mine, on="account_id", how="full", coalesce=True)
        assert both.height == acc.height == mine.height
        assert (both["prompts"] == both["n"]).all() and (both["flagged"] == both["f"]).all()
        assert (both["first_seen"] == both["t"]).all()
        # an operator group counts its accounts' flagged prompts in the window
        grouped = own.join(acc.filter(pl.col("operator_group") >= 0), on="account_id")
        assert ops["flagged_prompts"].sum() == grouped["flagged"].sum()
        assert set(acc.filter(pl.col("operator_group") >= 0)["operator_group"]) == set(ops["operator_group"])
        # stream.json lists the campaigns the window's own prompts were flagged with
        mine = own.filter("flagged")["campaign_id"].drop_nulls().unique().sort().to_list()
        named = cl.filter(pl.col("flagged") & (pl.col("size") > pl.col("exemplars")))["campaign_id"]
        assert w["campaigns"] == sorted(set(named.drop_nulls())) and set(mine) <= set(w["campaigns"])
        # ... and the manifest says what the tables hold
        got = json.loads((d / "manifest.json").read_text())["campaigns"]
        assert got["flagged_prompts"] == own["flagged"].sum() and got["operator_groups"] == ops.height
        assert got["flagged_accounts"] == acc["flagged"].sum()
        assert got["flagged_clusters"] == w["flagged_clusters"] == named.len()
        accounts.append(acc)
        operators.append(ops)
    # the second window clustered the first one's exemplars with its own prompts
    later = pl.read_parquet(tmp / "out" / state["windows"][1]["dir"] / "clusters.parquet")
    assert state["windows"][1]["carried_exemplars"] > 0 and later["exemplars"].sum() > 0
    # summed over the windows, the accounts' prompts are the day's
    day = pl.concat(accounts).group_by("account_id").agg(pl.col("prompts").sum())
    sent = traffic.group_by("account_id").len()
    assert (
        day.join(sent, on="account_id", how="full", coalesce=True)
        .select((pl.col("prompts") == pl.col("len")).all())
        .item()
    )


def test_an_account_or_operator_group_known_only_by_its_exemplars_is_not_the_windows():
    """``own_tables`` on a window whose flagged family holds two exemplars: one of an account that sent nothing
    in the window, whose operator group's flagged prompts here are all exemplars."""
    from clusterer.run.windows import own_tables

    t = dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
    run = {"run_id": "r", "day": dt.date(2026, 11, 1)}
    own = pl.DataFrame(
        {
            "account_id": ["a1", "a1", "a2"],
            "cluster_id": [0, 0, -1],
            "timestamp": [t, t + dt.timedelta(minutes=5), t],
            "flagged": [True, False, False],
            "campaign_id": ["cmp-x", "cmp-x", None],
        }
    ).with_columns(pl.lit(run["run_id"]).alias("run_id"), pl.lit(run["day"]).alias("day"))
    context = pl.DataFrame({"account_id": ["a3", "a1", "a3"], "cluster_id": [0, 0, -1]})
    clusters = pl.DataFrame({"cluster_id": [0, 1], "size": [4, 3], "flagged": [True, False], "exemplars": [None, None]})
    accounts = pl.DataFrame({"account_id": ["a1", "a2", "a3"], "operator_group": [0, 1, 1]})
    cl, acc, ops = own_tables(clusters, accounts, own, context)
    assert cl["exemplars"].to_list() == [2, 0] and cl.columns == clusters.columns
    assert acc["account_id"].to_list() == ["a1", "a2"]  # a3 sent nothing in the window
    a1 = acc.row(0, named=True)
    assert (a1["prompts"], a1["flagged"], a1["flagged_share"], a1["campaigns"]) == (2, True, 1.0, ["cmp-x"])
    assert a1["first_seen"] == t and a1["operator_group"] == 0 and not acc.row(1, named=True)["flagged"]
    # group 1's flagged prompt here was a3's exemplar: the window has none of it, and a2 names no group
    assert ops["operator_group"].to_list() == [0] and ops["flagged_prompts"].to_list() == [1]
    assert ops["first_seen"].to_list() == [t] and acc.row(1, named=True)["operator_group"] == -1


def test_a_windows_context_rows_are_its_campaigns_and_open_families_exemplars():
    """``Carried.context``: the campaigns' exemplars (``anchors``) and the open families' rows, by input row."""
    import numpy as np

    from clusterer.campaigns.open import KEY, OpenFamilies
    from clusterer.run.stages import Carried

    open_rows = pl.DataFrame({"_row": [4], KEY: ["w/3"]}, schema={"_row": pl.UInt32, KEY: pl.String})
    accounts = pl.DataFrame({KEY: ["w/3"], "account_id": ["a"]})
    carried = Carried(frozenset({"c"}), {0: "c", 2: "c"}, {}, {}, open_families=OpenFamilies(open_rows, accounts))
    rows = np.array([0, 1, 2, 4, 5, 7], np.int64)  # the embedded rows' input rows (3 and 6: empty texts)
    assert carried.context(rows).tolist() == [True, False, True, True, False, False]
    alone = Carried(frozenset(), {}, {}, {})
    assert not alone.context(rows).any()


def test_restart_goes_on_after_the_windows_done(streamed):
    tmp, _, _, args = streamed
    out = tmp / "out"
    state = json.loads((out / "stream.json").read_text())
    before = pl.read_parquet(out / state["windows"][0]["dir"] / "assignments.parquet")
    second = state["windows"][1]
    second_asg = pl.read_parquet(out / second["dir"] / "assignments.parquet")
    # as if the stream stopped inside the second window (its state before it is kept in out/before)
    state["pending"] = state["windows"][1]["index"]
    state["windows"] = state["windows"][:1]
    (out / "stream.json").write_text(json.dumps(state))
    res = CliRunner().invoke(app, [*args, *OPTS, "--cache-dir", str(tmp / "cache")])
    assert res.exit_code == 0, res.output
    after, _ = _windows(out)
    assert len(after["windows"]) == 2 and after["windows"][0] == state["windows"][0]
    assert pl.read_parquet(out / state["windows"][0]["dir"] / "assignments.parquet").equals(before)
    assert after["windows"][1]["campaigns"] == second["campaigns"]
    assert pl.read_parquet(out / second["dir"] / "assignments.parquet").equals(second_asg)
    # a stream.json of another window length is refused
    res = CliRunner().invoke(app, [*args[:-1], "6h", *OPTS])
    assert res.exit_code == 2 and "another stream" in res.output
    # so is a restart with options that change the windows (they would disagree with the windows done)
    res = CliRunner().invoke(app, [*args, *OPTS, "--min-cluster-size", "5", "--carry", "0"])
    assert res.exit_code == 2 and "started with other options" in res.output, res.output
    assert "cluster.min_cluster_size 10 -> 5" in res.output and "carry 32 -> 0" in res.output
    assert json.loads((out / "stream.json").read_text()) == after  # nothing changed
    # ... but not one with another embedding cache (it changes no output): the stream is done, nothing to run
    res = CliRunner().invoke(app, [*args, *OPTS, "--cache-dir", str(tmp / "cache2")])
    assert res.exit_code == 0, res.output
    # a stream begun by a version that recorded no options ran that version's defaults: refused too
    doc = json.loads((out / "stream.json").read_text())
    del doc["options"]
    (out / "stream.json").write_text(json.dumps(doc))
    res = CliRunner().invoke(app, [*args, *OPTS, "--cache-dir", str(tmp / "cache")])
    assert res.exit_code == 2 and "a version before 0.2.1, which recorded no options" in res.output, res.output
    doc["options"] = after["options"]
    (out / "stream.json").write_text(json.dumps(doc))


def test_a_restart_refuses_a_stream_whose_done_window_is_gone(streamed, tmp_path):
    """A window folder deleted after the window was done: its rows would be in no output, and it cannot be
    run again alone (the registry counts it), so a restart says so and changes nothing."""
    import shutil

    src, _, _, args = streamed
    out, reg = tmp_path / "out", tmp_path / "reg"
    shutil.copytree(src / "out", out)
    shutil.copytree(src / "reg", reg)
    first = json.loads((out / "stream.json").read_text())["windows"][0]["dir"]
    shutil.rmtree(out / first)
    doc = json.loads((out / "stream.json").read_text())
    doc["registry"] = str(reg.resolve())  # the copy's registry
    state = json.dumps(doc)
    (out / "stream.json").write_text(state)
    args = [*args[:2], "--out", str(out), "--registry", str(reg), *args[6:], *OPTS, "--cache-dir", str(src / "cache")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "have no output set" in res.output and first in res.output, res.output
    assert (out / "stream.json").read_text() == state and not (out / first).exists()


def test_a_window_stopped_after_the_registry_is_counted_once(streamed, tmp_path, monkeypatch):
    """A crash inside a window after the registry was written (before stream.json) re-runs the window from
    the state before it: the registry counts it once and the outputs equal an uninterrupted stream's."""
    import clusterer.run.windows as windows

    src, _, _, args = streamed
    out, reg = tmp_path / "out", tmp_path / "reg"
    args = [*args[:2], "--out", str(out), "--registry", str(reg), *args[6:], *OPTS, "--cache-dir", str(src / "cache")]
    real, calls = windows.next_carry, []

    def stop_in_the_second_window(*a, **k):
        calls.append(1)
        if len(calls) == 2:  # window 2 wrote its output set and the registry, not yet stream.json
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(windows, "next_carry", stop_in_the_second_window)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 130  # interrupted
    state = json.loads((out / "stream.json").read_text())
    assert len(state["windows"]) == 1 and state["pending"] == state["windows"][0]["index"] + 1
    crashed = load_registry(reg)
    monkeypatch.setattr(windows, "next_carry", real)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    after, asg = _windows(out)
    assert len(after["windows"]) == 2 and "pending" not in after
    # the crashed run's registry counted window 2 already; the restart put it back before re-running it
    assert load_registry(reg).daily["prompts"].sum() == asg["campaign_id"].is_not_null().sum()
    assert crashed.daily["prompts"].sum() == load_registry(reg).daily["prompts"].sum()
    whole, whole_asg = _windows(src / "out")
    assert asg.sort("prompt_id").equals(whole_asg.sort("prompt_id"))
    assert [w["campaigns"] for w in after["windows"]] == [w["campaigns"] for w in whole["windows"]]


def test_a_pending_window_without_its_kept_state_is_refused(streamed, tmp_path):
    src, _, _, args = streamed
    out = tmp_path / "out"
    out.mkdir()
    state = json.loads((src / "out" / "stream.json").read_text())
    pending = {**state, "windows": state["windows"][:1], "pending": state["windows"][1]["index"]}
    shutil.copytree(src / "out" / state["windows"][0]["dir"], out / state["windows"][0]["dir"])  # done: its set
    (out / "stream.json").write_text(json.dumps({**pending, "registry": str((tmp_path / "reg").resolve())}))
    args = [*args[:2], "--out", str(out), "--registry", str(tmp_path / "reg"), *args[6:], *OPTS]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "in progress" in res.output
    # a restart with another registry than the stream started with is refused before any work
    (out / "stream.json").write_text(json.dumps(pending))
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "a restart goes on with the registry it started with" in " ".join(res.output.split())
    assert not (tmp_path / "reg").exists()


def test_a_cluster_holds_the_campaigns_most_of_its_rows_carry():
    from clusterer.run.stages import _holders

    labels = [0] * 10 + [1] * 10 + [2] * 10 + [-1] * 4
    ids = (
        ["a"] * 7
        + [None] * 3  # cluster 0: a carried by most rows
        + ["a"] * 3
        + ["b"] * 3
        + [None] * 4  # cluster 1: a and b, together most of it: both held (then merged)
        + ["a"] * 4
        + [None] * 6  # cluster 2: a few exemplars in a cluster of new prompts name nothing
        + ["a"] * 4  # noise is no cluster
    )
    df = pl.DataFrame({"c": labels, "id": pl.Series(ids, dtype=pl.String)}).with_columns(pl.len().over("c").alias("n"))
    assert _holders(df, 0.2, 3) == {0: ["a"], 1: ["a", "b"]}
    assert _holders(df, 0.35, 3) == {0: ["a"]}  # b's 30% is not enough on its own, and a alone is not most
    assert _holders(df, 0.2, 4) == {0: ["a"]}


def test_rows_no_cluster_took_join_the_cluster_holding_their_campaign():
    import numpy as np

    from clusterer.run.stages import attach_known

    labels = np.array([0, 0, 0, 1, 1, -1, -1, -1, -1])
    ids = [None, None, None, None, None, "a", "b", "c", None]
    out = attach_known(labels, ids, {0: ["a"], 1: ["a", "b"]})
    # a is held by clusters 0 and 1: the larger takes it; b by 1; c by none; a row without a campaign stays
    assert out.tolist() == [0, 0, 0, 1, 1, 0, 1, -1, -1]
    assert attach_known(labels, ids, {}).tolist() == labels.tolist()


def test_a_fragment_without_a_template_holding_several_campaigns_is_split_by_campaign():
    import numpy as np

    from clusterer.run.stages import split_mixed

    def skeletons(rows):
        sets = [np.array(sorted(r), np.uint64) for r in rows]
        return np.r_[0, np.cumsum([len(s) for s in sets])].astype(np.int64), np.concatenate(sets)

    def own(n, at):  # n rows, each with shingles of its own
        return [{at + 3 * r, at + 1 + 3 * r, at + 2 + 3 * r} for r in range(n)]

    core = {1, 2, 3, 4, 5}
    # fragment 0: campaign a's template (a core of 5 shingles); fragment 1: rows of campaigns a, b and c (two
    # rows) and no core; fragment 2: an ordinary topic, no core; fragment 3: a and b, four rows each, nothing
    # else; two noise rows carrying a
    rows = [core | {100 + r} for r in range(6)] + own(12, 200) + own(4, 400) + own(8, 500) + own(2, 600)
    labels = np.array([0] * 6 + [1] * 12 + [2] * 4 + [3] * 8 + [-1] * 2)
    ids = ["a"] * 6 + ["a"] * 5 + ["b"] * 5 + ["c"] * 2 + [None] * 4 + ["a"] * 4 + ["b"] * 4 + ["a"] * 2
    indptr, hashes = skeletons(rows)
    out, moved = split_mixed(labels, ids, indptr, hashes, 4)
    # each campaign's rows make a fragment of their own, numbered after HDBSCAN's (no row joins another
    # fragment, whose core it would thin); c's two rows stay; fragment 3 would be emptied, so a (the first of
    # the two largest) stays in it; the template fragment, the ordinary one and the noise are left alone
    want = [0] * 6 + [4] * 5 + [5] * 5 + [1, 1] + [2] * 4 + [3] * 4 + [6] * 4 + [-1, -1]
    assert (out.tolist(), moved) == (want, 14)
    # one campaign by 3 rows or more: nothing moves
    ids_one = ids[:11] + ["b"] * 2 + [None] * 5 + ids[18:22] + ["a"] * 8 + ids[30:]
    assert split_mixed(labels, ids_one, indptr, hashes, 4)[0].tolist() == labels.tolist()
    # the mixed fragments have a template of their own (a core every row holds): nothing moves
    tagged = rows[:6] + [r | {900, 901, 902, 903} for r in rows[6:18]] + rows[18:22]
    tagged += [r | {950, 951, 952, 953} for r in rows[22:30]] + rows[30:]
    assert split_mixed(labels, ids, *skeletons(tagged), 4)[0].tolist() == labels.tolist()
    # the campaigns are not most of a fragment's rows: it stays whole
    ids_few = ids[:6] + ["a"] * 3 + ["b"] * 3 + [None] * 6 + ids[18:]
    out, moved = split_mixed(labels, ids_few, indptr, hashes, 4)
    assert out[:22].tolist() == labels[:22].tolist() and moved == 4
    # outside a stream window nothing is carried: the labels as they are
    assert split_mixed(labels, None, indptr, hashes, 4)[0].tolist() == labels.tolist()


class _Naming:
    """A registry naming that names each flagged cluster from a fixed table."""

    def __init__(self, names):
        self.names = names

    def __call__(self, cids, proposed):
        return {c: self.names.get(c, p) for c, p in zip(cids, proposed, strict=True)}


def test_clusters_holding_several_campaigns_merge_them_into_the_largest():
    from clusterer.run.stages import KeepNames, Known

    held = {0: ["a", "b"], 1: ["b"], 2: ["c"], 3: ["d", "e"], 5: ["x", "y"], 7: ["f", "g"]}
    weight = {"a": 10, "b": 20, "c": 5, "d": 3, "e": 3, "x": 9, "f": 1, "g": 8}
    variants = frozenset({("a", "b"), ("d", "e"), ("x", "y")})
    keep = KeepNames(_Naming({4: "a", 6: "e"}), Known(held, weight, 0, variants))
    # cluster 5 holds x and y but is not flagged: nothing merges through it; cluster 7 holds f and g, which
    # the window did not join as variants: it takes f's ID (most of its rows) and neither is merged
    ids = keep([0, 1, 2, 3, 4, 6, 7], ["p0", "p1", "p2", "p3", "p4", "p6", "p7"])
    # a and b: b has more prompts today; d and e: a tie, the smaller ID; a cluster the registry names after a
    # merged campaign takes the campaign it was merged into
    assert ids == {0: "b", 1: "b", 2: "c", 3: "d", 4: "b", 6: "d", 7: "f"}
    assert keep.merges == {"a": "b", "e": "d"}


def test_only_campaigns_joined_as_variants_are_merged():
    import numpy as np

    from clusterer.clustering.families import Grouping
    from clusterer.run.stages import KeepNames, Known, variant_pairs

    # one family (cluster 0) of three template groups: a and b in group 0 (one template), c in group 1 (same
    # language, joined on behaviour only), d in group 2 (another language)
    labels = np.zeros(12, np.int64)
    groups = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    ids = ["a", "a", "a", "b", "b", "b", "c", "c", "c", "d", "d", "d"]
    g = Grouping(labels, 3, 1, 0, 2, ["en"], groups, ["en", "en", "fr"])
    held = {0: ["a", "b", "c", "d"]}
    pairs = variant_pairs(g, ids, held)
    assert pairs == {("a", "b"), ("a", "d"), ("b", "d"), ("c", "d")}
    # merged with complete linkage: c is no variant of a or b, so d's translation does not chain it in
    keep = KeepNames(_Naming({}), Known(held, {"a": 9, "b": 1, "c": 5, "d": 1}, 0, pairs))
    assert keep([0], ["p0"]) == {0: "a"} and keep.merges == {"b": "a", "d": "a"}
    # a language py3langid is unsure of ('') is no evidence of a translation
    g = Grouping(labels, 3, 1, 0, 2, ["en"], groups, ["en", "en", ""])
    assert variant_pairs(g, ids, held) == {("a", "b")}
    # campaigns flagged in two earlier windows of the day and first flagged together, joined on behaviour, are
    # variants of one job; one of them scheduled is not enough, nor a second job begun hours after the first
    assert variant_pairs(g, ids, held, {"a": 3, "c": 4}) == {("a", "b"), ("a", "c")}
    assert variant_pairs(g, ids, held, {"c": 4}) == {("a", "b")}
    assert variant_pairs(g, ids, held, {"a": 0, "c": 10}) == {("a", "b")}
    # a cluster that holds a campaign's rows only in part is no evidence: b has as many rows in another
    # cluster (1) as in this one, and a merge is for the rest of the day
    labels2 = np.concatenate([labels, np.ones(3, np.int64)])
    groups2 = np.concatenate([groups, np.full(3, 3)])
    g2 = Grouping(labels2, 3, 1, 0, 2, ["en"], groups2, ["en", "en", "fr", "en"])
    assert variant_pairs(g2, [*ids, "b", "b", "b"], held) == {("a", "d"), ("c", "d")}


def test_a_campaign_flagged_in_two_windows_of_the_day_has_a_schedule():
    """Only a campaign flagged in at least two earlier windows of the day counts as scheduled (whatever the
    window length): c (two windows, merged into a) and d (one window, three half hours) are joined on
    behaviour with a, all begun in window 0 or 2; c merges with a, d does not."""
    from types import SimpleNamespace

    import numpy as np

    from clusterer.clustering.families import Grouping
    from clusterer.config import RunConfig
    from clusterer.run.stages import Carried, known_stage
    from clusterer.run.windows import scheduled

    today, before = dt.date(2026, 11, 1), dt.date(2026, 10, 31)
    rhythm = pl.DataFrame(
        {
            "window": [0, 1, 0, 2, 2, 2, 5, 7],
            "day": [today] * 6 + [before] * 2,
            "campaign_id": ["a", "a", "c0", "c", "d", "d", "e", "e"],
            "half_hour": [1, 2, 1, 5, 5, 6, 1, 3],
            "prompts": [5] * 8,
        }
    )
    assert scheduled(rhythm, today, {"c0": "c"}) == {"a": 0, "c": 0}
    assert scheduled(None, today, {}) == {} and scheduled(rhythm, before, {}) == {"e": 5}
    labels = np.zeros(9, np.int64)
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    ids = ["a", "a", "a", "c", "c", "c", "d", "d", "d"]
    g = Grouping(labels, 3, 1, 0, 2, ["en"], groups, ["en", "en", "en"])
    clu = SimpleNamespace(labels=labels, grouping=g, carried=ids, attach=None)
    carried = Carried(frozenset("acd"), {}, {}, {}, None, scheduled(rhythm, today, {"c0": "c"}))
    reg = Registry(pl.DataFrame(schema=CAMPAIGN_SCHEMA), pl.DataFrame(schema=DAILY_SCHEMA))
    _, known = known_stage(SimpleNamespace(date=None), RunConfig(), clu, reg, carried)
    assert known is not None and known.mergeable == {("a", "c")}


def test_campaigns_lending_each_other_scaffold_lines_are_named_as_one():
    from types import SimpleNamespace

    import numpy as np

    from clusterer.run.stages import KeepNames, Known, LineEvidence

    from ..clustering.test_lines import _day

    # clusters 0, 1, 2 are each one template group; 1 lends a line to 0 (their wording differs otherwise)
    labels, sk = _day()
    evidence = LineEvidence(labels, labels, sk, 0.5)
    # cluster 0 holds campaign a of earlier windows, the registry names cluster 1 b and cluster 2 c
    keep = KeepNames(_Naming({1: "b", 2: "c"}), Known({0: ["a"]}, {"a": 3, "b": 7}, 0), evidence)
    ids = keep([0, 1, 2], ["p0", "p1", "p2"])
    # b has more prompts today: a is named b from this window on, and merged into it in the registry
    assert ids == {0: "b", 1: "b", 2: "c"} and keep.merges == {"a": "b"} and keep.line_merges == {"a": "b"}
    # a campaign new in this window joins the known one and takes its ID (nothing to record)
    keep = KeepNames(_Naming({2: "c"}), Known({0: ["a"]}, {"a": 3}, 0), evidence)
    assert keep([0, 1, 2], ["p0", "p1", "p2"]) == {0: "a", 1: "a", 2: "c"} and keep.merges == {}
    # a tie (a campaign of an earlier day has no prompts today): the known campaign keeps its ID, not a new one
    keep = KeepNames(_Naming({0: "z", 1: "b", 2: "c"}), Known({}, {}, 0), evidence)
    keep.naming.reg = SimpleNamespace(campaigns=pl.DataFrame({"campaign_id": ["z"]}))
    assert keep([0, 1, 2], ["p0", "p1", "p2"]) == {0: "z", 1: "z", 2: "c"} and keep.merges == {}
    # without the evidence (`[cluster] join_variants = false`) every campaign keeps its own ID
    keep = KeepNames(_Naming({1: "b", 2: "c"}), Known({0: ["a"]}, {"a": 3, "b": 7}, 0))
    assert keep([0, 1, 2], ["p0", "p1", "p2"]) == {0: "a", 1: "b", 2: "c"} and keep.merges == {}
    assert np.array_equal(labels, evidence.families)


def test_merges_are_kept_in_the_registry_and_resolve_chains():
    from clusterer.run.windows import CAMPAIGN, next_carry
    from clusterer.store.registry import aliases, apply_merges

    d1 = dt.date(2026, 11, 1)
    reg = _reg([("a", d1, 5), ("b", d1, 9), ("c", d1, 2)])
    assert aliases(reg.campaigns) == {"a": "a", "b": "b", "c": "c"}
    reg = apply_merges(reg, {"a": "b"})
    # a later window merges b into c: a follows (no chain through b is left to a cycle)
    reg = apply_merges(reg, {"b": "c"})
    assert aliases(reg.campaigns) == {"a": "c", "b": "c", "c": "c"}
    assert apply_merges(reg, {"c": "a"}).campaigns.equals(reg.campaigns)  # a merge within one root: no-op
    # the window's registry (which may lack merged campaigns) merged with the day keeps the marks
    new = _reg([("c", d1, 4)])
    day = merge_day(reg, new, d1)
    m = {r["campaign_id"]: r["merged_into"] for r in day.campaigns.iter_rows(named=True)}
    assert m == {"a": "b", "b": "c", "c": None} and aliases(day.campaigns) == {"a": "c", "b": "c", "c": "c"}
    # carried exemplars of merged campaigns count as the campaign they were merged into
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    win = pl.DataFrame({"prompt_id": ["p0", "p1", "p2"], "timestamp": [t0, t0, t0]})
    asg = pl.DataFrame({"prompt_id": ["p0", "p1", "p2"], "flagged": [True] * 3, "campaign_id": ["a", "b", "x"]})
    carry = next_carry(None, win, asg, per_campaign=8, root=aliases(reg.campaigns))
    assert sorted(carry[CAMPAIGN].to_list()) == ["c", "c", "x"]


def test_the_day_rhythm_counts_flagged_prompts_per_half_hour():
    from clusterer.run.windows import day_rhythm, next_rhythm

    t = dt.datetime(2026, 11, 1, 10, 5, tzinfo=dt.timezone.utc)
    asg = pl.DataFrame(
        {
            "timestamp": [t, t, t + dt.timedelta(minutes=30), t, t - dt.timedelta(days=1)],
            "flagged": [True, True, True, False, True],
            "campaign_id": ["a", "b", "a", "a", "a"],
        }
    )
    r = next_rhythm(None, asg, {"a": "a", "b": "b"}, window=7)
    d1 = dt.date(2026, 11, 1)
    prof = day_rhythm(r, d1, {"a": "a", "b": "b"})
    assert set(prof) == {"a", "b"} and prof["a"][20] == 1 and prof["a"][21] == 1 and prof["a"].sum() == 2
    # the next window: b was merged into a; the previous day's prompts stay out of this day's rhythm
    r = next_rhythm(r, asg.head(1), {"a": "a", "b": "a"}, window=8)
    prof = day_rhythm(r, d1, {"a": "a", "b": "a"})
    assert set(prof) == {"a"} and prof["a"][20] == 3 and prof["a"].sum() == 4
    # a window run again after a restart replaces its rows instead of counting twice
    assert next_rhythm(r, asg.head(1), {"a": "a", "b": "a"}, window=8).equals(r)
    assert day_rhythm(None, d1, {}) == {}


def test_a_merged_campaign_names_its_prompts_after_the_one_it_joined(tmp_path):
    import numpy as np

    from clusterer.store.registry import apply_merges, assign_to_known, load_registry, save_registry

    d1 = dt.date(2026, 11, 1)
    reg = _reg([("a", d1, 5), ("b", d1, 9)])
    reg = Registry(
        campaigns=reg.campaigns.with_columns(
            pl.Series("scaffold_shingles", [list(range(10)), list(range(100, 110))], pl.List(pl.UInt64))
        ),
        daily=reg.daily,
    )
    indptr = np.array([0, 10, 20], np.int64)
    hashes = np.r_[np.arange(10), np.arange(100, 110)].astype(np.uint64)
    assert assign_to_known(reg, indptr, hashes, 0.5, 6)[0] == ["a", "b"]
    merged = apply_merges(reg, {"a": "b"})
    assert assign_to_known(merged, indptr, hashes, 0.5, 6)[0] == ["b", "b"]
    save_registry(tmp_path / "reg", merged)
    assert load_registry(tmp_path / "reg").campaigns["merged_into"].to_list() == ["b", None]
    # a registry of an earlier version (no merged_into column) reads with none merged
    old = tmp_path / "old"
    save_registry(old, reg)
    pl.read_parquet(old / "campaigns.parquet").drop("merged_into").write_parquet(old / "campaigns.parquet")
    (old / "manifest.json").unlink()
    assert load_registry(old).campaigns["merged_into"].null_count() == 2
    # a campaign merged into one the registry does not hold is refused
    bad = tmp_path / "bad"
    save_registry(bad, reg)
    camps = pl.read_parquet(bad / "campaigns.parquet").with_columns(pl.lit("gone").alias("merged_into"))
    camps.write_parquet(bad / "campaigns.parquet")
    (bad / "manifest.json").unlink()
    with pytest.raises(InputError, match="merged into campaigns it does not hold"):
        load_registry(bad)


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


def test_a_quiet_window_without_families_goes_on(streamed, tmp_path):
    """A window too quiet for any family (3 prompts) writes its set and leaves the registry as it was; the
    stream goes on to the next window instead of failing there on every restart."""
    src, traffic, labels, _ = streamed
    ts = traffic["timestamp"]
    noon = ts.min().replace(hour=12, minute=0, second=0, microsecond=0)
    quiet = pl.concat([traffic.filter(pl.col("timestamp") < noon).head(3), traffic.filter(pl.col("timestamp") >= noon)])
    path = tmp_path / "quiet.parquet"
    quiet.write_parquet(path)
    args = ["stream", str(path), "--out", str(tmp_path / "out"), "--registry", str(tmp_path / "reg"), "--window", "12h"]
    res = CliRunner().invoke(app, [*args, *OPTS, "--cache-dir", str(src / "cache")])
    assert res.exit_code == 0, res.output
    state, asg = _windows(tmp_path / "out")
    assert [w["rows"] for w in state["windows"]] == [3, quiet.height - 3]
    assert state["windows"][0]["campaigns"] == [] and state["windows"][1]["campaigns"] != []
    assert sorted(asg["prompt_id"].to_list()) == sorted(quiet["prompt_id"].to_list())


def test_windows_hold_the_shared_template_rule_only_in_families_of_known_campaigns():
    """A stream window reads the rule that a flagged prompt shares its fragment's template only in families
    holding a campaign flagged earlier in the day, and not for rows carrying such a campaign: a family new
    this window is a handful of prompts, too few for the rule. A batch run reads every count."""
    from types import SimpleNamespace

    import numpy as np

    from clusterer.run.stages import Known, window_shared

    shared = np.array([0, 9, 0, 0, 2], np.int32)
    clu = SimpleNamespace(shared=shared, carried=[None, None, "c", None, None], labels=np.array([0, 0, 0, 1, -1]))
    assert window_shared(clu, None, window=False) is shared
    assert window_shared(clu, None, window=True) is None  # no campaign flagged earlier: every family is new
    big = np.iinfo(np.int32).max
    got = window_shared(clu, Known(held={0: ["c"]}, weight={}, attached=0), window=True)
    assert got.tolist() == [0, 9, big, big, big]  # family 0 holds "c" (its row carrying "c" kept); family 1 is new


def test_stream_windows_count_shared_templates_unless_turned_off(streamed, tmp_path, monkeypatch):
    import clusterer.run.stages as stages

    src, _, _, args = streamed
    real, calls = stages.shared_template, []

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(stages, "shared_template", counted)
    # on: the second window only (the day's first has no campaign flagged earlier, whose families the rule reads)
    for on, n in ((True, 1), (False, 0)):
        out, reg, cfg = tmp_path / f"out{on}", tmp_path / f"reg{on}", tmp_path / f"c{on}.toml"
        cfg.write_text(f"[campaign]\nprompt_shared_in_windows = {str(on).lower()}\n")
        run = [*args[:2], "--out", str(out), "--registry", str(reg), *args[6:], "--config", str(cfg), *OPTS]
        calls.clear()
        assert CliRunner().invoke(app, [*run, "--cache-dir", str(src / "cache")]).exit_code == 0 and len(calls) == n


def test_a_window_groups_families_with_its_accounts_earlier_prompts_as_senders(streamed, tmp_path, monkeypatch):
    """The second window's family grouping gets its accounts' earlier prompts of the day that hold a fragment's
    core, each counted once; the first window has none, and a batch run reads none."""
    import numpy as np

    import clusterer.run.stages as stages

    src, _, _, args = streamed
    real, seen = stages.group_fragments, []

    def recorded(*a, **k):
        seen.append(k.get("senders"))
        return real(*a, **k)

    monkeypatch.setattr(stages, "group_fragments", recorded)
    out, reg = tmp_path / "out", tmp_path / "reg"
    args = [*args[:2], "--out", str(out), "--registry", str(reg), *args[6:], *OPTS, "--cache-dir", str(src / "cache")]
    assert CliRunner().invoke(app, args).exit_code == 0 and len(seen) == 2
    first, second = seen
    assert first is None and second is not None and len(second.prompt) > 0
    assert len(np.unique(second.prompt)) == len(second.prompt) and (second.weight >= 1.0).all()
    run = ["run", args[1], "--out", str(tmp_path / "batch"), *OPTS, "--cache-dir", str(src / "cache")]
    assert CliRunner().invoke(app, run).exit_code == 0 and seen[2:] == [None]


def test_a_window_reads_its_own_rows_back_from_any_directory(streamed, tmp_path, monkeypatch):
    """A window's manifest lists the whole log the stream read (by absolute path); the report's exemplars and
    `fingerprints match` read the window's own rows back by prompt ID, from another working directory."""
    from clusterer.report.html.data import input_texts, load_run
    from clusterer.store.fingerprints import _run_prompts

    src, traffic, _, _ = streamed
    state = json.loads((src / "out" / "stream.json").read_text())
    w = src / "out" / state["windows"][1]["dir"]
    monkeypatch.chdir(tmp_path)
    run = load_run(w)
    assert 0 < run.assignments.height < traffic.height
    rows = list(range(10))
    texts, note = input_texts(run, rows)
    assert note is None
    expect = dict(zip(traffic["prompt_id"].to_list(), traffic["text"].to_list(), strict=True))
    ids = run.assignments["prompt_id"].to_list()
    assert {r: texts[r] for r in rows} == {r: expect[ids[r]] for r in rows}
    got = _run_prompts(w, json.loads((w / "manifest.json").read_text()), run.assignments["prompt_id"], None)
    assert got["prompt_id"].to_list() == ids


def test_a_window_gives_the_same_results_whatever_order_its_rows_came_in(streamed, tmp_path):
    """A window clusters its rows in prompt-ID order: the day's rows shuffled stream to the same windows."""
    src, traffic, _, args = streamed
    path = tmp_path / "shuffled.parquet"
    traffic.sample(fraction=1.0, shuffle=True, seed=5).write_parquet(path)
    out = tmp_path / "out"
    again = ["stream", str(path), "--out", str(out), "--registry", str(tmp_path / "reg"), *args[6:]]
    res = CliRunner().invoke(app, [*again, *OPTS, "--cache-dir", str(src / "cache")])
    assert res.exit_code == 0, res.output
    cols = ["prompt_id", "cluster_id", "status", "flagged", "campaign_id"]
    (first, a), (then, b) = _windows(src / "out"), _windows(out)
    assert [w["dir"] for w in first["windows"]] == [w["dir"] for w in then["windows"]]
    assert a.select(cols).sort("prompt_id").equals(b.select(cols).sort("prompt_id"))


def test_an_empty_log_is_a_stream_of_no_windows(tmp_path, day):
    path = tmp_path / "empty.parquet"
    day[0].head(0).write_parquet(path)
    out = tmp_path / "out"
    args = ["stream", str(path), "--out", str(out), "--registry", str(tmp_path / "reg"), "--window", "1h", *OPTS]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads((out / "stream.json").read_text())["windows"] == []


def test_rows_without_a_timestamp_are_named_not_streamed(tmp_path, day):
    traffic = (
        day[0]
        .head(50)
        .with_columns(
            pl.when(pl.int_range(0, pl.len()) == 3).then(None).otherwise(pl.col("timestamp")).alias("timestamp")
        )
    )
    path = tmp_path / "d.parquet"
    traffic.write_parquet(path)
    out = tmp_path / "out"
    args = ["stream", str(path), "--out", str(out), "--registry", str(tmp_path / "reg"), "--window", "1h"]
    res = CliRunner().invoke(app, [*args, "--null-timestamps", "skip", *OPTS])
    assert res.exit_code == 2 and "1 rows have no timestamp" in res.output, res.output
    assert repr(traffic["prompt_id"][3]) in res.output


def test_a_watch_waits_for_a_csv_part_cut_inside_its_last_field(tmp_path, day):
    """A CSV part file still being written (cut inside its last field) is read again at the next poll, not
    clustered with its last prompt cut short."""
    traffic = day[0].head(80).with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"))
    logs, out = tmp_path / "logs", tmp_path / "out"
    logs.mkdir()
    whole = traffic.write_csv()
    part = logs / "part-00.csv"
    part.write_text(whole[: whole.rstrip("\n").rfind(",") + 4])  # three characters of the last text
    args = ["watch", str(logs), "--out", str(out), "--registry", str(tmp_path / "reg"), "--window", "1h"]
    res = CliRunner().invoke(app, [*args, "--polls", "1", *OPTS])
    assert res.exit_code == 0, res.output
    assert not (out / "stream.json").is_file() or json.loads((out / "stream.json").read_text())["windows"] == []
    part.write_text(whole)
    res = CliRunner().invoke(app, [*args, "--polls", "1", *OPTS])  # a done window's row changed would exit 2
    assert res.exit_code == 0, res.output
    _, asg = _windows(out)
    assert asg.sort("prompt_id")["prompt_id"].to_list() == sorted(traffic["prompt_id"])


def test_a_day_fed_part_by_part_streams_as_the_whole_day_and_takes_late_rows(streamed, tmp_path, monkeypatch):
    """A day's part files as they arrive: `watch` clusters the windows closed so far, `stream` goes on when
    more parts come, and the outputs are those of the whole day streamed at once. Rows that arrive after
    their window was done go with the next window; rows a done window clustered may not change."""
    src, traffic, _, args = streamed
    logs, out, reg = tmp_path / "logs", tmp_path / "out", tmp_path / "reg"
    logs.mkdir()
    noon = dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc)
    traffic.filter(pl.col("timestamp") < noon).write_parquet(logs / "part-00.parquet")
    common = ["--out", str(out), "--registry", str(reg), "--window", "12h", *OPTS, "--cache-dir", str(src / "cache")]
    res = CliRunner().invoke(app, ["watch", str(logs), *common, "--polls", "1"])
    assert res.exit_code == 0, res.output
    assert len(json.loads((out / "stream.json").read_text())["windows"]) == 1  # its end long past: closed
    traffic.filter(pl.col("timestamp") >= noon).write_parquet(logs / "part-12.parquet")
    res = CliRunner().invoke(app, ["stream", str(logs), *common])
    assert res.exit_code == 0, res.output
    fed, fed_asg = _windows(out)
    whole, whole_asg = _windows(src / "out")
    assert fed_asg.drop("run_id").sort("prompt_id").equals(whole_asg.drop("run_id").sort("prompt_id"))
    assert [w["campaigns"] for w in fed["windows"]] == [w["campaigns"] for w in whole["windows"]]
    assert load_registry(reg).daily.equals(load_registry(src / "reg").daily)

    # late rows: three prompts of the morning arrive after both windows were done
    late = traffic.filter(pl.col("timestamp") < noon).head(3).with_columns(pl.col("prompt_id") + "-late")
    late.write_parquet(logs / "part-13.parquet")
    res = CliRunner().invoke(app, ["stream", str(logs), *common])  # a finished day: no window to take them
    assert res.exit_code == 2 and "3 rows arrived after their window was done" in res.output, res.output
    res = CliRunner().invoke(app, ["watch", str(logs), *common, "--polls", "1"])  # a live day: they wait
    assert res.exit_code == 0 and len(json.loads((out / "stream.json").read_text())["windows"]) == 2
    # the next day's first rows, in a part that adds an optional column (null in the rows read before: the
    # done windows' rows are unchanged); a stop inside their window, then its part gone: the registry is put
    # back to the state before that window though nothing is left to run
    nxt = traffic.tail(40).with_columns(
        pl.col("prompt_id") + "-d2", pl.col("timestamp") + dt.timedelta(days=1), pl.lit("sdk/1.0").alias("user_agent")
    )
    nxt.write_parquet(logs / "part-24.parquet")
    import clusterer.run.windows as windows

    kept = load_registry(reg).daily
    with monkeypatch.context() as m:
        m.setattr(windows, "next_carry", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
        assert CliRunner().invoke(app, ["stream", str(logs), *common]).exit_code == 130
    assert json.loads((out / "stream.json").read_text())["pending"] is not None
    assert not load_registry(reg).daily.equals(kept)  # the stopped window wrote the registry
    (logs / "part-24.parquet").rename(logs / ".part-24.parquet")
    res = CliRunner().invoke(app, ["watch", str(logs), *common, "--polls", "1"])
    assert res.exit_code == 0 and load_registry(reg).daily.equals(kept), res.output
    (logs / ".part-24.parquet").rename(logs / "part-24.parquet")
    res = CliRunner().invoke(app, ["stream", str(logs), *common])
    assert res.exit_code == 0, res.output
    state, asg = _windows(out)
    assert state["windows"][2]["late_rows"] == 3 and state["windows"][2]["rows"] == 43 and "pending" not in state
    # the window is dated by its day, not by its rows' median (the late rows and carried exemplars are of the
    # day before)
    assert asg.filter(pl.col("prompt_id").is_in(nxt["prompt_id"].implode()))["day"].unique().to_list() == [
        dt.date(2026, 11, 2)
    ]
    assert sorted(asg["prompt_id"]) == sorted([*traffic["prompt_id"], *late["prompt_id"], *nxt["prompt_id"]])
    assert set(late["prompt_id"]) <= set(
        pl.read_parquet(out / state["windows"][2]["dir"] / "assignments.parquet")["prompt_id"]
    )

    # a done window's rows changed, or gone from the logs: refused, nothing changes
    before = (out / "stream.json").read_text()
    edited = pl.read_parquet(logs / "part-00.parquet")
    edited.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("other")).otherwise("text").alias("text")
    ).write_parquet(logs / "part-00.parquet")
    res = CliRunner().invoke(app, ["stream", str(logs), *common])
    assert res.exit_code == 2 and "the logs now hold them with other content" in " ".join(res.output.split()), (
        res.output
    )
    (logs / "part-00.parquet").unlink()
    res = CliRunner().invoke(app, ["stream", str(logs), *common])
    assert res.exit_code == 2 and f"{edited.height:,} of them are no longer in the logs" in " ".join(res.output.split())
    assert (out / "stream.json").read_text() == before


def test_a_live_window_closes_when_later_rows_come_or_its_end_has_settled():
    from clusterer.run.windows import Live

    hour = 3600
    w = 24 * 20_000  # some hour of a day: window index in hours since 1970
    end = dt.datetime.fromtimestamp((w + 1) * hour, dt.timezone.utc)
    live = Live(end + dt.timedelta(minutes=10), dt.timedelta(minutes=15))
    assert not live.closed(w, hour, newest=w)  # its hour ended 10 min ago, no later row yet
    assert live.closed(w, hour, newest=w + 1)  # rows of the next hour are in
    assert Live(end + dt.timedelta(minutes=15), dt.timedelta(minutes=15)).closed(w, hour, newest=w)


def test_a_day_held_without_its_texts_streams_as_one_held_whole(streamed, tmp_path, caplog):
    """`stream` holds a day read from files without its texts (each window's texts and its accounts' earlier
    prompts read back from the files): its outputs are those of the same day given as a table in memory. A
    part file rewritten after it was read is refused before its window begins (a watch reads again at the
    next poll), the state left as it was."""
    from clusterer import api
    from clusterer.io.ingest import LogsChanged
    from clusterer.run.windows import Live, stream

    src, traffic, _, _ = streamed
    cfg = api.resolve_config(None, model="hashing", device="cpu", quiet=True, cache_dir=str(src / "cache"))
    held = api.read_input(traffic, cfg)
    state = stream(held, tmp_path / "mem", cfg, dt.timedelta(hours=12), tmp_path / "mem-reg")
    _, mem = _windows(tmp_path / "mem")
    _, files = _windows(src / "out")
    assert len(state["windows"]) == 2
    assert mem.drop("run_id").sort("prompt_id").equals(files.drop("run_id").sort("prompt_id"))
    assert load_registry(tmp_path / "mem-reg").daily.equals(load_registry(src / "reg").daily)
    assert [w["digest"] for w in state["windows"]] == [
        w["digest"] for w in json.loads((src / "out" / "stream.json").read_text())["windows"]
    ]

    path = tmp_path / "day.parquet"
    traffic.write_parquet(path)
    lean = api.read_input(str(path), cfg, texts=False)
    assert "text" not in lean.frame.columns
    traffic.with_columns(pl.col("text") + "!").write_parquet(path)
    out, reg = tmp_path / "out", tmp_path / "reg"
    with pytest.raises(LogsChanged, match="day.parquet"):
        stream(lean, out, cfg, dt.timedelta(hours=12), reg)
    assert not (out / "stream.json").is_file() or json.loads((out / "stream.json").read_text())["windows"] == []
    assert not (out / "before").exists() and not reg.exists()
    live = Live(dt.datetime(2026, 11, 3, tzinfo=dt.timezone.utc), dt.timedelta(minutes=15))
    state = stream(lean, out, cfg, dt.timedelta(hours=12), reg, live=live)
    assert state["windows"] == [] and "pending" not in state and "reading the logs again" in caplog.text
    assert len(live.changed) == 1 and "day.parquet" in live.changed[0]  # the watch reads every file again


def test_a_window_keeps_a_variant_only_for_the_campaign_its_rows_already_carry():
    import numpy as np

    from clusterer.clustering.families import Grouping
    from clusterer.config import RegistryConfig
    from clusterer.run.stages import Clustering, variant_owners
    from clusterer.store.registry import Naming
    from clusterer.text.templates import Templates

    labels = np.array([0] * 11 + [1] * 3 + [-1], np.int64)
    groups = np.array([5] * 4 + [6] * 3 + [7] * 4 + [8] * 3 + [-1], np.int64)
    carried = ["a"] * 4 + ["b", None, None] + ["b", "b", "b", "a"] + [None] * 3 + ["a"]
    grouping = Grouping(labels, 3, 2, 0, 0, ["en", "en"], groups)
    clu = Clustering(None, grouping, None, None, None, carried)
    v = [np.array([1, 2, 3], np.uint64), np.array([4, 5], np.uint64), np.array([6, 7], np.uint64)]
    tmpl = Templates(["t", "u"], None, None, ["k", "l"], None, [], [], [v, [v[0]]], [[5, 6, 7], [8]])
    # group 6: one of three rows carries b, not half; group 7: three of four carry b
    assert variant_owners(clu, tmpl) == [["a", None, "b"], [None]]
    assert variant_owners(Clustering(None, grouping, None, None, None, None), tmpl) is None

    def named(owners):
        reg = _reg([("z", dt.date(2026, 10, 31), 1)])
        cent = np.eye(2, dtype=np.float32)
        sets = [np.array([1], np.uint64), np.array([9], np.uint64)]
        naming = Naming(reg, RegistryConfig(), cent, sets, sets, ["t", "u"], tmpl.variants, owners)
        naming([0, 1], ["a", "n"])
        clusters = pl.DataFrame(
            {
                "cluster_id": [0, 1],
                "flagged": [True, True],
                "prompts": [11, 3],
                "accounts": [3, 2],
                "campaign_score": [1.0, 1.0],
                "campaign_id": ["a", "n"],
            }
        )
        out = naming.updated(clusters, dt.date(2026, 11, 1)).campaigns
        return dict(zip(out["campaign_id"].to_list(), out["scaffold_variants"].to_list(), strict=True))

    # a window: a keeps the variant its rows carry, not b's; a campaign new this window keeps none yet
    got = named(variant_owners(clu, tmpl))
    assert got["a"] == [[1, 2, 3]] and got["n"] == [] and got["z"] is None
    # a batch run keeps every variant of the family
    got = named(None)
    assert got["a"] == [[1, 2, 3], [4, 5], [6, 7]] and got["n"] == [[1, 2, 3]]
