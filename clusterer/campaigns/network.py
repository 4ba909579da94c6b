"""Network and payment evidence per template family, from the log's optional columns (``io.ingest.Network``).

Campaign operators send their fleets' traffic through infrastructure they rent in bulk: proxy pools of a
few datacenter networks, rotating residential proxies, a handful of cards paying for hundreds of accounts.
Ordinary users sit on consumer networks (one home address, perhaps a carrier's shared NAT) and pay for
their own account; a legitimate customer sends all its API keys through one corporate egress and pays with
one corporate card — so "many accounts on one network" and "one card for many accounts" count only between
*senders* (organisations when the log has ``org_id``; else accounts, those that pay with one card from one
fixed address taken together: :func:`senders`), and a network counts as crowded only when the family's
senders are most of the senders seen there that day.

Features (per family; null when the column they need is missing):

- ``hosting_share``: share of its prompts from proxy / hosting networks; ``hosting_excess``: that share
  beyond the day's, (share − day) / (1 − day), in [−1, 1];
- ``crowded_share``: share of its prompts sent from a client fingerprint (network, with the user agent when
  the log has one) on which at least ``crowded_min_senders`` of its senders work and which carries at least
  half of the senders seen on it that day (a proxy pool; not a carrier NAT, not one customer's egress);
- ``rotating_share``: among its prompts from accounts with at least ``rotation_min_networks`` prompts that
  day, the share from accounts seen on at least that many networks (ASNs; /24s when the log has no ASN):
  rotating proxies;
- ``shared_payment_share``: share of its prompts from accounts whose payment fingerprint is used by at least
  ``payment_min_senders`` senders that day.
"""

from __future__ import annotations

import polars as pl

from ..config import CampaignConfig
from ..io.ingest import Network

# the prompt frame's columns for each signal (added by :func:`with_network`)
NET, ASN, PROXY, UA, PAY, SENDER = "_net", "_asn", "_proxy", "_ua", "_pay", "_sender"


def senders(account: pl.Series, orgs: pl.Series | None, network: Network) -> pl.Series:
    """The sender of each row: its organisation when ``orgs`` is given. Without an organisation column, accounts
    that each send all their prompts from one and the same client address and pay with one and the same
    card are one sender (``pay:<card>@<address>``): a customer's API keys behind its corporate egress. Every
    other account is a sender of its own — proxy pools rotate addresses, so their accounts stay apart (an
    operator that sends every account through one address with one card is counted as one sender: the
    price is one address and one card that carry the whole fleet)."""
    if orgs is not None:
        return orgs.cast(pl.String).alias(SENDER)
    acct = account.cast(pl.String)
    if network.ip is None or network.payment is None:
        return acct.alias(SENDER)
    df = pl.DataFrame({"a": acct, "ip": network.ip, "pay": network.payment})
    per = df.group_by("a").agg(
        pl.col("ip").n_unique().alias("_nip"),
        pl.col("ip").first().alias("_ip"),
        pl.col("pay").n_unique().alias("_npay"),
        pl.col("pay").first().alias("_pay"),
    )
    one = (pl.col("_nip") == 1) & (pl.col("_npay") == 1) & pl.col("_ip").is_not_null() & pl.col("_pay").is_not_null()
    per = per.select("a", pl.when(one).then("pay:" + pl.col("_pay") + "@" + pl.col("_ip")).otherwise(pl.col("a")))
    return acct.replace_strict(per["a"], per.to_series(1), return_dtype=pl.String).alias(SENDER)


def with_network(prompts: pl.DataFrame, network: Network | None, orgs: pl.Series | None) -> pl.DataFrame:
    """``prompts`` (one row per input row) with the present network columns and the sender of each row
    (:func:`senders`)."""
    if network is None or not network.present:
        return prompts
    cols = {NET: network.net, ASN: network.asn, PROXY: network.proxy, UA: network.user_agent, PAY: network.payment}
    extra = [s.alias(name) for name, s in cols.items() if s is not None]
    return prompts.with_columns(*extra, senders(prompts["account_id"], orgs, network))


def _hosting(prompts: pl.DataFrame, fam: pl.DataFrame) -> pl.DataFrame:
    day = float(prompts[PROXY].mean() or 0.0)
    return fam.group_by("cluster_id").agg(
        pl.col(PROXY).mean().alias("hosting_share"),
        ((pl.col(PROXY).mean() - day) / max(1.0 - day, 1e-6)).clip(-1.0, 1.0).alias("hosting_excess"),
    )


def _crowded(prompts: pl.DataFrame, fam: pl.DataFrame, cfg: CampaignConfig) -> pl.DataFrame:
    fp = pl.col(NET) + pl.lit("\x00") + pl.col(UA).fill_null("") if UA in prompts.columns else pl.col(NET)
    day = (
        prompts.filter(pl.col(NET).is_not_null())
        .group_by(fp.alias("_fp"))
        .agg(pl.col(SENDER).n_unique().alias("_day_senders"))
    )
    per = (
        fam.filter(pl.col(NET).is_not_null())
        .group_by("cluster_id", fp.alias("_fp"))
        .agg(pl.len().alias("_n"), pl.col(SENDER).n_unique().alias("_senders"))
        .join(day, on="_fp", how="left")
        .with_columns(
            (
                (pl.col("_senders") >= cfg.crowded_min_senders) & (2 * pl.col("_senders") >= pl.col("_day_senders"))
            ).alias("_crowded")
        )
    )
    # integer sums, then one division: the same value whatever order the group-by returns rows in
    return per.group_by("cluster_id").agg(
        (pl.col("_n").filter(pl.col("_crowded")).sum() / pl.col("_n").sum()).alias("crowded_share")
    )


def _rotating(prompts: pl.DataFrame, fam: pl.DataFrame, cfg: CampaignConfig) -> pl.DataFrame:
    # networks as operators (ASNs): a phone user moves between a carrier's NAT prefixes, a home line and
    # perhaps a VPN; a residential proxy hops between ISPs
    col = ASN if ASN in prompts.columns else NET
    acc = prompts.group_by("account_id").agg(pl.len().alias("_k"), pl.col(col).drop_nulls().n_unique().alias("_nets"))
    m = cfg.rotation_min_networks
    per = fam.select("cluster_id", "account_id").join(acc, on="account_id", how="left")
    eligible = pl.col("_k") >= m
    return per.group_by("cluster_id").agg(
        pl.when(eligible.any())
        .then((eligible & (pl.col("_nets") >= m)).sum() / eligible.sum())
        .otherwise(None)
        .alias("rotating_share")
    )


def _payment(prompts: pl.DataFrame, fam: pl.DataFrame, cfg: CampaignConfig) -> pl.DataFrame:
    cards = (
        prompts.filter(pl.col(PAY).is_not_null())
        .group_by(PAY)
        .agg((pl.col(SENDER).n_unique() >= cfg.payment_min_senders).alias("_shared"))
    )
    per = fam.select("cluster_id", PAY).join(cards, on=PAY, how="left")
    return per.group_by("cluster_id").agg(pl.col("_shared").fill_null(False).mean().alias("shared_payment_share"))


def network_features(prompts: pl.DataFrame, cfg: CampaignConfig) -> pl.DataFrame | None:
    """Per cluster (``cluster_id`` ≥ 0): the network features (module docstring) of the signals present in
    ``prompts`` (every input row, made by :func:`with_network`: ``cluster_id``, ``account_id`` and the
    network columns); None when the log carries none of them."""
    cols = prompts.columns
    if SENDER not in cols:
        return None
    fam = prompts.filter(pl.col("cluster_id") >= 0)
    out = fam.select(pl.col("cluster_id").unique().sort())
    parts = []
    if PROXY in cols:
        parts.append(_hosting(prompts, fam))
    if NET in cols:
        parts += [_crowded(prompts, fam, cfg), _rotating(prompts, fam, cfg)]
    elif ASN in cols:
        parts.append(_rotating(prompts, fam, cfg))
    if PAY in cols:
        parts.append(_payment(prompts, fam, cfg))
    for part in parts:
        out = out.join(part, on="cluster_id", how="left")
    return out


def network_terms(columns: list[str]) -> dict[str, pl.Expr]:
    """The network terms of the campaign score (``campaigns.decisions.score_terms``), each in its
    ``calibrate.TERM_RANGE``; 0 for a signal the log lacks:

      crowded   crowded_share          its senders crowd client networks that carry little else
      proxy     hosting_excess         proxy / hosting traffic beyond the day's share (negative below it)
      rotation  rotating_share         its accounts hop between networks
      payment   shared_payment_share   its accounts pay with cards shared across senders
    """
    source = {
        "crowded": "crowded_share",
        "proxy": "hosting_excess",
        "rotation": "rotating_share",
        "payment": "shared_payment_share",
    }
    return {t: pl.col(c) if c in columns else pl.lit(0.0) for t, c in source.items()}
