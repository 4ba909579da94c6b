import datetime as dt

import numpy as np
import polars as pl

from clusterer.campaigns.decisions import campaign_features, decide, operator_groups, score_campaigns, tags_of
from clusterer.config import CampaignConfig

DAY = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def _day(rng):
    """Cluster 0: campaign (30 fresh accounts, 4 prompts each, nothing else, varied slot).
    Cluster 1: legitimate customer (20 API keys of one old organisation, only this traffic).
    Cluster 2: pasted shared prompt (25 old accounts, once each, identical text, plenty of other traffic).
    Cluster 3: campaign over only 3 accounts (below the effective-accounts floor)."""
    rows = []

    def add(cluster, acct, key, org, age_days):
        rows.append(
            {
                "cluster_id": cluster,
                "account_id": acct,
                "key": key,
                "org_id": org,
                "timestamp": DAY + dt.timedelta(seconds=int(rng.integers(86_400))),
                "account_created_at": DAY - dt.timedelta(days=age_days),
            }
        )

    k = 0
    for a in range(30):
        for _ in range(4):
            add(0, f"c{a}", k, f"o-c{a}", 5)
            k += 1
    for _ in range(200):
        add(1, f"legit{rng.integers(20)}", k, "acme", 900)
        k += 1
    for a in range(25):
        add(2, f"u{a}", 999_999, f"o-u{a}", 700)
        for _ in range(6):
            add(-1, f"u{a}", k, f"o-u{a}", 700)
            k += 1
    for _ in range(40):
        add(3, f"small{rng.integers(3)}", k, "o-small", 3)
        k += 1
    df = pl.DataFrame(rows).with_columns(pl.col("key").cast(pl.UInt64), pl.col("cluster_id").cast(pl.Int64))
    clusters = pl.DataFrame(
        {
            "cluster_id": [0, 1, 2, 3],
            "rigidity": [0.6, 0.8, 1.0, 0.6],
            "template_coverage": [0.7, 0.7, 1.0, 0.7],
            "template": [
                "solve step by step {…}",
                "you are the acme helpdesk {…}",
                "act as a travel guide",
                "grade the answer {…}",
            ],
        }
    )
    return df, clusters


def test_features_and_score_separate_campaign_from_hard_negatives():
    df, clusters = _day(np.random.default_rng(0))
    cfg = CampaignConfig()
    feats = campaign_features(df, clusters, cfg)
    f = {r["cluster_id"]: r for r in feats.iter_rows(named=True)}
    assert f[0]["account_focus"] == 1.0 and f[0]["slot_variety"] == 1.0 and f[0]["new_account_share"] == 1.0
    assert f[0]["single_prompt_account_share"] == 0.0 and 25 < f[0]["effective_accounts"] <= 30
    assert f[1]["top_org_share"] == 1.0
    assert f[2]["slot_variety"] == 1 / 25 and abs(f[2]["account_focus"] - 1 / 7) < 1e-9
    assert f[0]["tags"] == ["reasoning_trace"] and f[3]["tags"] == ["grading"]
    scored = {r["cluster_id"]: r for r in score_campaigns(feats, cfg).iter_rows(named=True)}
    assert scored[0]["flagged"] and scored[0]["campaign_score"] > 0.9
    assert not scored[1]["flagged"] and not scored[2]["flagged"]
    assert scored[3]["campaign_score"] == 0.0  # fewer than 5 effective accounts
    assert all(0.0 <= r["campaign_score"] <= 1.0 for r in scored.values())


def test_score_runs_without_metadata_columns():
    df, clusters = _day(np.random.default_rng(1))
    feats = campaign_features(df.drop("org_id", "account_created_at"), clusters, CampaignConfig())
    assert "top_org_share" not in feats.columns and "new_account_share" not in feats.columns
    scored = score_campaigns(feats, CampaignConfig())
    assert scored.filter(pl.col("cluster_id") == 0)["flagged"][0]


def test_operator_groups_join_two_campaigns_on_one_pool_and_leave_others_alone():
    # accounts 0-9 run flagged families 0 and 1; accounts 10-14 only family 2; 15-19 an unflagged family 3
    accounts = np.concatenate([np.arange(10), np.arange(10), np.arange(10, 15), np.arange(15, 20)])
    labels = np.concatenate([np.zeros(10), np.ones(10), np.full(5, 2), np.full(5, 3)]).astype(np.int64)
    groups = operator_groups(accounts, labels, np.array([0, 1, 2]), CampaignConfig())
    assert len(set(groups[:10].tolist())) == 1 and groups[0] >= 0
    assert len(set(groups[10:15].tolist())) == 1 and groups[10] != groups[0]
    assert (groups[15:20] == -1).all()


def test_decide_reports_missing_signals_and_flags_accounts():
    df, clusters = _day(np.random.default_rng(2))
    frame = df.drop("org_id", "account_created_at").select("account_id", "timestamp")
    dec = decide(
        frame, df["cluster_id"].to_numpy(), df["key"].to_numpy(), clusters, ["k0", "k1", "k2", "k3"], CampaignConfig()
    )
    assert not dec.signals.org and not dec.signals.account_age
    # without org_id a customer spread over 20 keys looks like a campaign (see README); the rest holds
    assert dec.prompt_flagged[:120].all() and set(dec.prompt_campaign[i] for i in range(120)) == {"cmp-k0"}
    labels = df["cluster_id"].to_numpy()
    assert not dec.prompt_flagged[(labels == 2) | (labels == 3) | (labels == -1)].any()
    acc = {r["account_id"]: r for r in dec.accounts.iter_rows(named=True)}
    assert acc["c3"]["flagged"] and acc["c3"]["campaigns"] == ["cmp-k0"] and acc["c3"]["flagged_share"] == 1.0
    assert not acc["u3"]["flagged"] and not acc["small1"]["flagged"]
    assert dec.operators.height == 2 and sorted(dec.operators["accounts"].to_list()) == [20, 30]


def test_a_prompt_that_shares_no_template_with_its_family_is_not_flagged():
    """An ordinary prompt drawn into a campaign's family (a few members carry its text as payload) is not
    flagged though the family is and its account works it; with the rule off it is."""
    df, clusters = _day(np.random.default_rng(2))
    frame = df.drop("org_id", "account_created_at").select("account_id", "timestamp")
    labels = df["cluster_id"].to_numpy()
    shared = np.full(len(labels), 6, np.int32)
    shared[[5, 50]] = 0  # two members of flagged family 0
    args = (frame, labels, df["key"].to_numpy(), clusters, ["k0", "k1", "k2", "k3"])
    dec = decide(*args, CampaignConfig(), shared=shared)
    assert dec.prompt_flagged[:120].sum() == 118 and not dec.prompt_flagged[[5, 50]].any()
    assert dec.prompt_campaign[5] == "cmp-k0"  # still a member of the family, with its ID
    off = decide(*args, CampaignConfig(prompt_min_shared=0), shared=shared)
    assert off.prompt_flagged[:120].all()
    # a payload copy (refine.payload_copies) is not flagged either, and stays a member with the family's ID
    copies = np.zeros(len(labels), bool)
    copies[[7, 60]] = True
    dec = decide(*args, CampaignConfig(), copies=copies)
    assert dec.prompt_flagged[:120].sum() == 118 and not dec.prompt_flagged[[7, 60]].any()
    assert dec.prompt_campaign[7] == "cmp-k0"


def test_a_prompt_that_carries_a_fifth_of_its_scaffold_is_flagged_whatever_its_account_sends():
    """A campaign prompt from an account that mostly sends ordinary traffic (one prompt in the family, six
    outside it) is flagged when it carries ``prompt_min_fit`` (20%) of its fragment's core — a paraphrased
    variant holds little of a core its fragment's other wordings share — and not when it carries less."""
    df, clusters = _day(np.random.default_rng(2))
    stray = [
        {
            "cluster_id": c,
            "account_id": "stray",
            "key": 7_000_000 + j,
            "org_id": "o-stray",
            "timestamp": DAY + dt.timedelta(seconds=600 * j),
            "account_created_at": DAY - dt.timedelta(days=400),
        }
        for j, c in enumerate([0, -1, -1, -1, -1, -1, -1])
    ]
    df = pl.concat([df, pl.DataFrame(stray).with_columns(pl.col("key").cast(pl.UInt64))], how="vertical_relaxed")
    frame = df.select("account_id", "timestamp")
    labels = df["cluster_id"].to_numpy()
    row = int(np.flatnonzero(df["account_id"].to_numpy() == "stray")[0])
    args = (frame, labels, df["key"].to_numpy(), clusters, ["k0", "k1", "k2", "k3"])
    for fit_of_row, flagged in [(0.25, True), (0.1, False), (0.0, False)]:
        fit = np.ones(len(labels), np.float32)
        fit[row] = fit_of_row
        dec = decide(*args, CampaignConfig(), fit=fit)
        assert dec.prompt_flagged[row] == flagged, fit_of_row
        assert dec.prompt_campaign[row] == "cmp-k0"  # a member of the flagged family either way
        assert dec.prompt_flagged[:120].all()
    # without fit the account decides: one prompt of seven in flagged families is a stray, not an operator
    assert not decide(*args, CampaignConfig()).prompt_flagged[row]
    assert not decide(
        *args, CampaignConfig(prompt_min_fit=0.5), fit=np.where(np.arange(len(labels)) == row, 0.4, 1.0)
    ).prompt_flagged[row]


def test_a_part_of_a_flagged_family_sent_by_ordinary_users_is_not_flagged():
    """A campaign's family (30 fresh accounts that send nothing else) that took in a fragment of a payload
    pool's problems sent bare by 40 old accounts, each one prompt there among eight: the family is flagged,
    and every prompt holds its fragment's core (fit 1), but the ordinary fragment's own senders say ordinary
    users, so its prompts are not flagged; a small part of the campaign's own (6 fresh accounts) is, and so
    are the twelve parts 60 aged campaign accounts spread their day over (their focus is read over the
    family). With ``part_sender_gap`` 0, or without fragments, every member is flagged, as before."""
    rng = np.random.default_rng(5)
    rows = []

    def add(cluster, frag, acct, age_days):
        rows.append(
            {
                "cluster_id": cluster,
                "frag": frag,
                "account_id": acct,
                "key": len(rows),
                "timestamp": DAY + dt.timedelta(seconds=int(rng.integers(86_400))),
                "account_created_at": DAY - dt.timedelta(days=age_days),
            }
        )

    for a in range(30):
        for _ in range(4):
            add(0, 10, f"c{a}", 5)
    for a in range(6):
        add(0, 12, f"v{a}", 3)
    for a in range(40):
        add(0, 11, f"u{a}", 800)
        for _ in range(7):
            add(-1, -1, f"u{a}", 800)
    # aged campaign accounts that spread their day over a dozen parts of the family and send nothing else: each
    # part holds a third of an account's prompts (and shares too few accounts with any other part to make it a
    # sibling), the family all of them
    for a in range(60):
        for part in rng.choice(np.arange(13, 25), 3, replace=False):
            add(0, int(part), f"w{a}", 900)
    df = pl.DataFrame(rows).with_columns(pl.col("key").cast(pl.UInt64), pl.col("cluster_id").cast(pl.Int64))
    clusters = pl.DataFrame(
        {"cluster_id": [0], "rigidity": [0.6], "template_coverage": [0.7], "template": ["solve with tests {…}"]}
    )
    labels, frags = df["cluster_id"].to_numpy(), df["frag"].to_numpy().astype(np.int64)
    args = (df.select("account_id", "timestamp"), labels, df["key"].to_numpy(), clusters, ["k0"])
    kw = {"fit": np.ones(len(labels), np.float32), "created": df["account_created_at"]}
    dec = decide(*args, CampaignConfig(), fragments=frags, **kw)
    assert dec.clusters.filter(pl.col("cluster_id") == 0)["flagged"][0]
    assert dec.prompt_flagged[frags == 10].all() and dec.prompt_flagged[frags == 12].all()
    assert dec.prompt_flagged[frags >= 13].all()  # focus read over the family, not the part
    assert not dec.prompt_flagged[frags == 11].any()
    assert dec.ordinary is not None and (dec.ordinary == (frags == 11)).all()
    # a later decision over the same fragments (families joined as variants) reads the first one's parts
    again = decide(*args, CampaignConfig(), ordinary=dec.ordinary, **kw)
    assert (again.prompt_flagged == dec.prompt_flagged).all()
    assert {dec.prompt_campaign[i] for i in np.flatnonzero(frags == 11)} == {"cmp-k0"}  # still members
    acc = {r["account_id"]: r["flagged"] for r in dec.accounts.iter_rows(named=True)}
    assert acc["c0"] and acc["v0"] and not acc["u0"]
    for off in (
        decide(*args, CampaignConfig(part_sender_gap=0), fragments=frags, **kw),
        decide(*args, CampaignConfig(), **kw),
    ):
        assert off.prompt_flagged[labels == 0].all()


def test_tags_of_uses_lexicons():
    assert tags_of("Translate to French, then score 0-10 as JSON") == ["tool_use", "grading", "translation"]
    assert tags_of("hello there") == []


def test_one_operator_running_two_campaigns_is_one_group(tmp_path, fast_cfg):
    from clusterer import api, synth

    traffic, labels = synth.fake_day(seed=11, campaign_sizes=(90, 90), one_operator=True, accounts_per_campaign=15)
    path = tmp_path / "day.parquet"
    traffic.write_parquet(path)
    api.run([path], tmp_path / "out", fast_cfg())
    acc = pl.read_parquet(tmp_path / "out" / "accounts.parquet")
    op = acc.filter(pl.col("account_id").str.starts_with("op-"))
    assert op["flagged"].all() and op["operator_group"].n_unique() == 1 and op["operator_group"][0] >= 0
    assert all(len(c) == 2 for c in op["campaigns"].to_list())  # two campaigns, one operator
    others = acc.filter(~pl.col("account_id").str.starts_with("op-"))
    assert (others["operator_group"] != op["operator_group"][0]).all()
    ops = pl.read_parquet(tmp_path / "out" / "operators.parquet")
    mine = ops.filter(pl.col("operator_group") == op["operator_group"][0])
    assert mine["accounts"][0] == 15 and len(mine["campaigns"][0]) == 2


def test_contributions_explain_the_score_and_terms_are_bounded():
    from clusterer.config import SCORE_TERMS

    df, clusters = _day(np.random.default_rng(3))
    cfg = CampaignConfig()
    scored = score_campaigns(campaign_features(df, clusters, cfg), cfg)
    for t in SCORE_TERMS:
        assert scored[f"term_{t}"].is_between(-1.0, 1.0).all()
    total = scored.select(pl.sum_horizontal("contrib_bias", *[f"contrib_{t}" for t in SCORE_TERMS]))
    np.testing.assert_allclose(total.to_series().to_numpy(), scored["campaign_logit"].to_numpy())
    # the customer is held back by its one organisation and established accounts
    cust = scored.filter(pl.col("cluster_id") == 1)
    assert cust["contrib_one_org"][0] < 0 and cust["contrib_fresh"][0] < 0


def test_cover_traffic_does_not_sink_a_campaign():
    """Campaign accounts that also send plenty of ordinary prompts lower its focus; fresh accounts, a varied
    slot and many accounts still carry it (no single term vetoes)."""
    df, clusters = _day(np.random.default_rng(4))
    rng = np.random.default_rng(5)
    cover = [
        {
            "cluster_id": -1,
            "account_id": f"c{a}",
            "key": 5_000_000 + 100 * a + j,
            "org_id": f"o-c{a}",
            "timestamp": DAY + dt.timedelta(seconds=int(rng.integers(86_400))),
            "account_created_at": DAY - dt.timedelta(days=5),
        }
        for a in range(30)
        for j in range(12)
    ]
    df = pl.concat([df, pl.DataFrame(cover).with_columns(pl.col("key").cast(pl.UInt64))], how="vertical_relaxed")
    cfg = CampaignConfig()
    scored = {
        r["cluster_id"]: r for r in score_campaigns(campaign_features(df, clusters, cfg), cfg).iter_rows(named=True)
    }
    assert scored[0]["account_focus"] < 0.3 and scored[0]["contrib_focus"] < 0
    assert scored[0]["flagged"]


def test_campaign_features_are_the_same_to_the_bit_on_every_call():
    # float sums over a group-by's rows used to add in the order the (multi-threaded) group-by produced,
    # so effective_accounts and burst_excess moved in their last digit from run to run
    rng = np.random.default_rng(0)
    n = 60_000
    ts = np.datetime64("2026-11-01") + rng.integers(0, 86_400, n).astype("timedelta64[s]")
    df = pl.DataFrame(
        {
            "cluster_id": rng.integers(-1, 40, n).astype(np.int64),
            "account_id": [f"a{x}" for x in rng.integers(0, 5_000, n)],
            "timestamp": ts.astype("datetime64[us]"),
            "key": rng.integers(0, 2**63, n).astype(np.uint64),
        }
    ).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    clusters = pl.DataFrame(
        {
            "cluster_id": np.arange(40, dtype=np.int64),
            "rigidity": np.ones(40, np.float32),
            "template_coverage": np.ones(40, np.float32),
            "template": ["x"] * 40,
        }
    )
    first = campaign_features(df, clusters, CampaignConfig())
    for _ in range(4):
        again = campaign_features(df, clusters, CampaignConfig())
        for col in ("effective_accounts", "account_focus", "burst_excess"):
            assert again[col].equals(first[col]), col


def _window_once_each(n=40):
    """A stream window's view of a load-balanced campaign: 40 accounts, one prompt each to cluster 0."""
    rows = [
        {"cluster_id": 0, "account_id": f"c{a}", "key": a, "timestamp": DAY + dt.timedelta(minutes=a)} for a in range(n)
    ]
    df = pl.DataFrame(rows).with_columns(pl.col("key").cast(pl.UInt64), pl.col("cluster_id").cast(pl.Int64))
    clusters = pl.DataFrame(
        {"cluster_id": [0], "rigidity": [0.6], "template_coverage": [0.7], "template": ["solve step by step {…}"]}
    )
    return df, clusters


def test_a_stream_window_reads_account_focus_over_the_day_so_far():
    """Each account sends the family one prompt in the window: alone, the window reads focus 0.5 and every
    account as a one-shot sender; with each account's 4 earlier prompts today all in the family, focus 1.0
    and no one-shot senders. Earlier prompts that went elsewhere never lower the window's own focus."""
    df, clusters = _window_once_each()
    cfg = CampaignConfig()
    alone = campaign_features(df, clusters, cfg).row(0, named=True)
    assert alone["account_focus"] == 0.5 and alone["single_prompt_account_share"] == 1.0
    accounts = [f"c{a}" for a in range(40)]
    totals = pl.DataFrame({"account_id": accounts, "prev_total": [4] * 40})
    in_family = pl.DataFrame({"cluster_id": [0] * 40, "account_id": accounts, "prev_k": [4.0] * 40})
    day = campaign_features(df, clusters, cfg, (in_family, totals)).row(0, named=True)
    assert day["account_focus"] == 1.0 and day["single_prompt_account_share"] == 0.0
    assert (
        score_campaigns(campaign_features(df, clusters, cfg, (in_family, totals)), cfg)["campaign_score"][0]
        > score_campaigns(campaign_features(df, clusters, cfg), cfg)["campaign_score"][0]
    )
    elsewhere = campaign_features(df, clusters, cfg, (in_family.clear(), totals)).row(0, named=True)
    assert elsewhere["account_focus"] == 0.5 and elsewhere["single_prompt_account_share"] == 1.0
    half = in_family.with_columns(pl.lit(2.0).alias("prev_k"))
    got = campaign_features(df, clusters, cfg, (half, totals)).row(0, named=True)
    assert abs(got["account_focus"] - 0.6) < 1e-9 and got["single_prompt_account_share"] == 0.0  # (1 + 2) / (1 + 4)


def test_earlier_prompts_count_for_the_family_whose_variant_they_carry(monkeypatch):
    """A family of two variants (two fragments with their own scaffolds): an account's earlier prompt of
    either variant went to the family, an ordinary one did not, and the matches scale to the account's
    earlier prompts today (4 matched of the 8 sampled out of 16 → 8)."""
    from clusterer.campaigns.earlier import Earlier, earlier_hits, earlier_in_families, fragment_cores
    from clusterer.text.skeleton import shingle_sets

    a = "you write python and its tests code the function add a pytest file with many edge case tests"
    b = "produce a reference solution then list the unit tests it must pass and explain each of them"
    # 12 and 8 members: a core over the whole family would be the larger variant's alone
    texts = [f"{a} payload {i} word{i}" for i in range(12)] + [f"{b} item {i} thing{i}" for i in range(8)]
    indptr, hashes = shingle_sets(pl.Series(texts), 3)
    fragments = np.array([0] * 12 + [1] * 8, np.int64)
    families = np.zeros(20, np.int64)
    pairs = pl.DataFrame({"cluster_id": [0, 0], "account_id": ["x", "y"]})
    earlier = Earlier(
        prompts=pl.DataFrame(
            {
                "account_id": ["x"] * 8 + ["y", "z"],
                "timestamp": [dt.datetime(2026, 11, 1, 3, tzinfo=dt.timezone.utc)] * 10,
                "text": [f"{a} other {i}" for i in range(2)]
                + [f"{b} more {i}" for i in range(2)]
                + ["what is the capital of france"] * 4
                + [f"{a} again", f"{b} and z"],
            }
        ),
        totals=pl.DataFrame({"account_id": ["x", "y", "z"], "prev_total": [16, 1, 1], "sampled": [8, 1, 1]}),
        normalise=lambda t: t,
    )

    def matched(accounts: list[str]) -> dict[str, float]:
        hits = earlier_hits(fragment_cores(fragments, indptr, hashes), earlier, pl.Series(accounts), 3, 0.5, 4)
        got = earlier_in_families(hits, fragments, families, pairs, earlier)
        return {r["account_id"]: r["prev_k"] for r in got.iter_rows(named=True)}

    got = matched(["x", "y", "z"])
    assert got == {"x": 8.0, "y": 1.0}  # z sends no prompt of the family in the window: not counted
    assert matched(["x"]) == {"x": 8.0}  # only the accounts asked for are read
    # matched in chunks (a busy window's earlier prompts are shingled a few thousand at a time): the same
    monkeypatch.setattr("clusterer.campaigns.earlier._CHUNK", 3)
    assert matched(["x", "y", "z"]) == got


def test_sibling_counts_when_one_account_sends_the_whole_day():
    """Logs with no account data filled with one ID (or a handful of accounts sending everything): every
    account is spread over more clusters than a light one, so no two clusters are siblings and each row
    counts its own prompts (this crashed in scipy's empty look-up before 0.2.15)."""
    from clusterer.campaigns.decisions import _sibling_counts
    from clusterer.config import CampaignConfig

    n_cl = 100
    per_acct = pl.DataFrame(
        {
            "cluster_id": list(range(n_cl)) * 2,
            "account_id": ["unknown"] * n_cl + ["other"] * n_cl,
            "_k": [float(c % 7 + 1) for c in range(n_cl)] * 2,
        }
    )
    (own,) = _sibling_counts(per_acct, CampaignConfig())
    assert np.array_equal(own, per_acct["_k"].to_numpy())
