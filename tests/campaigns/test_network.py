"""Network and payment evidence (campaigns.network, io.ingest.network_metadata)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest

from clusterer.campaigns.decisions import decide
from clusterer.campaigns.network import network_features, with_network
from clusterer.config import SCORE_TERMS, CampaignConfig, IngestConfig, load_config
from clusterer.errors import ConfigError, InputError
from clusterer.io.ingest import NETWORK_SIGNALS, client_network, network_metadata

DAY = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def _day(rng: np.random.Generator) -> pl.DataFrame:
    """One row per prompt, with network columns.

    Cluster 0: campaign, 30 accounts (30 orgs), behind two datacenter /24s of a hosting provider, one script UA,
      three cards for all of them.
    Cluster 1: legitimate customer, 20 API keys of one organisation behind one corporate egress, one corporate
      card.
    Cluster 2: ordinary users, 40 accounts on home lines (4 prompts each), a few of them on one carrier NAT
      /24 shared with many other users (cluster -1), each paying for itself.
    Cluster 3: a residential-proxy campaign, 12 accounts each hopping over many consumer ASNs.
    """
    rows = []

    def add(cluster, acct, org, ip, asn, proxy, ua, card):
        rows.append(
            {
                "cluster_id": cluster,
                "account_id": acct,
                "org_id": org,
                "timestamp": DAY + dt.timedelta(seconds=int(rng.integers(86_400))),
                "client_ip": ip,
                "asn": asn,
                "proxy": proxy,
                "user_agent": ua,
                "payment_fingerprint": card,
            }
        )

    for a in range(30):
        for _ in range(4):
            net = ["203.0.113", "198.18.7"][int(rng.integers(2))]
            ip = f"{net}.{rng.integers(1, 255)}"
            add(0, f"c{a}", f"o-c{a}", ip, "AS64999", "HostCo", "python-bot/1", f"k{a % 3}")
    for _ in range(200):
        k = int(rng.integers(20))
        add(1, f"acme{k}", "acme", "192.0.2.10", "AS64500", None, "acme-sdk/2", "corp-acme")
    for a in range(40):
        nat = a < 6
        ip = f"100.64.1.{a + 1}" if nat else f"81.{a}.{a}.7"
        for _ in range(4):
            add(2, f"u{a}", f"o-u{a}", ip, "AS1" if nat else f"AS{100 + a % 9}", None, "Firefox", f"card-u{a}")
    for a in range(60):  # other users behind the same carrier NAT prefix
        add(-1, f"n{a}", f"o-n{a}", f"100.64.1.{100 + a}", "AS1", None, "Firefox", None)
    for a in range(12):
        for _ in range(6):
            asn = int(rng.integers(50))
            add(3, f"r{a}", f"o-r{a}", f"{70 + asn}.9.{rng.integers(256)}.5", f"AS{200 + asn}", None, "Chrome", None)
    return pl.DataFrame(rows)


def _features(df: pl.DataFrame, cfg: IngestConfig | None = None, orgs: bool = True) -> dict[int, dict]:
    net = network_metadata(df, cfg or IngestConfig())
    prompts = with_network(df.select("cluster_id", "account_id"), net, df["org_id"] if orgs else None)
    feats = network_features(prompts, CampaignConfig())
    return {r["cluster_id"]: r for r in feats.iter_rows(named=True)}


def test_proxy_pool_is_crowded_and_customer_egress_is_not():
    f = _features(_day(np.random.default_rng(0)))
    assert f[0]["crowded_share"] == 1.0 and f[0]["hosting_share"] == 1.0 and f[0]["hosting_excess"] > 0.5
    assert f[0]["shared_payment_share"] == 1.0
    # one organisation behind one egress, one card: one sender, nothing crowded or shared
    assert f[1]["crowded_share"] == 0.0 and f[1]["shared_payment_share"] == 0.0 and f[1]["hosting_excess"] < 0
    # a carrier NAT carries many other senders: not crowded; own cards: not shared
    assert f[2]["crowded_share"] == 0.0 and f[2]["shared_payment_share"] == 0.0 and f[2]["rotating_share"] == 0.0
    # residential proxies: hopping over ASNs
    assert f[3]["rotating_share"] == 1.0 and f[3]["crowded_share"] == 0.0
    for r in f.values():
        for c in ("hosting_share", "crowded_share", "rotating_share", "shared_payment_share"):
            assert r[c] is None or 0.0 <= r[c] <= 1.0
        assert -1.0 <= r["hosting_excess"] <= 1.0


def test_without_org_one_card_from_one_address_is_one_sender():
    df = _day(np.random.default_rng(1))
    f = _features(df, orgs=False)
    # 20 API keys paying with one card from one fixed address: one sender, not a pool
    assert f[1]["crowded_share"] == 0.0 and f[1]["shared_payment_share"] == 0.0
    # the pool rotates addresses: its accounts stay apart, crowded and sharing three cards
    assert f[0]["crowded_share"] == 1.0 and f[0]["shared_payment_share"] == 1.0
    # documented limit (README): without org_id and without a payment column, the keys look like a pool
    f = _features(df.drop("payment_fingerprint"), orgs=False)
    assert f[1]["crowded_share"] == 1.0


def test_column_names_are_configurable_and_missing_ones_listed():
    df = _day(np.random.default_rng(2)).rename({"client_ip": "src", "proxy": "vpn_provider"})
    default = network_metadata(df, IngestConfig())
    assert default.present == ("asn", "user_agent", "payment_fingerprint")
    assert default.missing == ["client_ip", "proxy"]
    cfg = IngestConfig(ip_col="src", proxy_col="vpn_provider", payment_col="")
    net = network_metadata(df, cfg)
    assert net.present == ("client_ip", "asn", "proxy", "user_agent") and net.missing == ["payment_fingerprint"]
    assert net.net is not None and net.net[0].count(".") == 2
    # the same features as with the default names
    same = _features(df.rename({"src": "client_ip", "vpn_provider": "proxy"}))
    assert _features(df, cfg)[0]["crowded_share"] == same[0]["crowded_share"] == 1.0
    assert "shared_payment_share" not in _features(df, cfg)[0]
    # a config file sets them under [ingest]
    assert load_config(None, **{"ingest.ip_col": "src"}).ingest.ip_col == "src"


def test_network_values_are_parsed():
    ips = pl.Series(["10.1.2.3", "2001:db8:aa:1::5", "10.1.2", None, "  10.9.9.9 "])
    assert client_network(ips).to_list() == ["10.1.2", "2001:db8:aa", "10.1.2", None, "10.9.9"]
    assert client_network(pl.Series([0x0A010203, 0x0A0102FF])).n_unique() == 1
    for raw, want in (
        ([True, False, None], [True, False, False]),
        ([1, 0, None], [True, False, False]),
        (["HostCo", "", "no", None, "false", "Tor"], [True, False, False, False, False, True]),
    ):
        got = network_metadata(pl.DataFrame({"proxy": raw}), IngestConfig()).proxy
        assert got.to_list() == want
    with pytest.raises(InputError, match="column 'asn' holds"):
        network_metadata(pl.DataFrame({"asn": [[1], [2]]}), IngestConfig())
    empty = network_metadata(pl.DataFrame({"asn": [None, None]}, schema={"asn": pl.String}), IngestConfig())
    assert empty.present == () and empty.missing == list(NETWORK_SIGNALS)


def _decide(df: pl.DataFrame, cfg: CampaignConfig, network: bool = True):
    n = df.height
    keys = np.arange(n, dtype=np.uint64)  # every prompt distinct: a varied slot
    clusters = pl.DataFrame(
        {
            "cluster_id": [0, 1, 2, 3],
            "rigidity": [0.6] * 4,
            "template_coverage": [0.7] * 4,
            "template": ["solve {…}", "acme helpdesk {…}", "hello {…}", "grade {…}"],
        }
    )
    return decide(
        df.select("account_id", "timestamp"),
        df["cluster_id"].to_numpy(),
        keys,
        clusters,
        ["k0", "k1", "k2", "k3"],
        cfg,
        orgs=df["org_id"],
        network=network_metadata(df, IngestConfig()) if network else None,
    )


def test_terms_are_bounded_shown_and_absent_without_columns():
    df = _day(np.random.default_rng(3))
    cfg = dataclasses.replace(CampaignConfig(), w_crowded=2.0, w_proxy=2.0, w_rotation=2.0, w_payment=2.0)
    c = _decide(df, cfg).clusters
    for t in ("crowded", "proxy", "rotation", "payment"):
        assert c[f"term_{t}"].is_between(-1.0, 1.0).all()
        assert np.allclose(c[f"contrib_{t}"].to_numpy(), 2.0 * c[f"term_{t}"].to_numpy())
    logit = c.select(pl.sum_horizontal("contrib_bias", *[f"contrib_{t}" for t in SCORE_TERMS]))
    assert np.allclose(logit.to_series().to_numpy(), c["campaign_logit"].to_numpy())
    assert c.filter(pl.col("cluster_id") == 0)["contrib_crowded"][0] == 2.0
    # without the columns: every network term is 0, the score is what it was without network weights
    without = _decide(df, cfg, network=False)
    net_terms = without.clusters.select([f"term_{t}" for t in ("crowded", "proxy", "rotation", "payment")])
    assert (net_terms.to_numpy() == 0).all()
    base = _decide(df, CampaignConfig(), network=False).clusters["campaign_score"]
    assert np.allclose(without.clusters["campaign_score"].to_numpy(), base.to_numpy())
    assert without.signals.network == () and _decide(df, cfg).signals.network == NETWORK_SIGNALS


def test_no_network_term_decides_alone():
    # the config refuses a network weight >= |bias| like any other
    with pytest.raises(ConfigError, match="no single evidence term may flag a family alone"):
        CampaignConfig(bias=-4.0, w_crowded=4.0, w_variety=1.0, w_spread=1.0, w_fresh=1.0, w_one_org=1.0)
    # the default weights: with every other term at its weakest, all network terms at their strongest do
    # not flag a family; a customer behind its egress (one organisation) stays unflagged with them
    cfg = CampaignConfig()
    lo = {"variety": -1.0, "spread": 0.0, "focus": 0.0, "one_shot": -1.0, "fresh": -1.0, "one_org": -1.0}
    net = sum(getattr(cfg, f"w_{t}") for t in ("crowded", "proxy", "rotation", "payment"))
    rest = sum(getattr(cfg, f"w_{t}") * lo.get(t, 0.0) for t in SCORE_TERMS)
    assert cfg.bias + net + rest < 0
    c = _decide(_day(np.random.default_rng(4)), cfg).clusters
    assert not c.filter(pl.col("cluster_id") == 1)["flagged"][0]
    assert c.filter(pl.col("cluster_id") == 0)["flagged"][0]
