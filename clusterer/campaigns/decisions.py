"""Campaign decisions: per-cluster campaign features, a documented campaign score, flags, operator groups.

A cluster is a template family; a *campaign* is a family that looks operated: a scaffold with a varied
slot, spread over many accounts that do little else, often from freshly created accounts of unrelated
organisations. The score combines features that separate that from the hard negatives:

- a legitimate high-volume customer: templated, but few accounts, or many API keys of *one* organisation;
- popular shared prompts pasted by strangers: accounts that mostly send other things, old accounts;
- trending topics: no scaffold, accounts that mostly send other things.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.sparse import coo_matrix, csgraph

from ..accel import fastops
from ..config import SCORE_TERMS, CampaignConfig
from ..io.ingest import Network
from .network import network_features, network_terms, with_network
from .open import ONCE, OpenFamilies, earlier_accounts

# Capability tags: documented lexicons over the rendered template (lower-cased, normalised text).
TAG_LEXICONS: dict[str, tuple[str, ...]] = {
    "reasoning_trace": (
        "step by step",
        "<think",
        "chain of thought",
        "reasoning",
        "show your work",
        "scratchpad",
        "razona",
        "ragiona",
        "schritt für schritt",
        "étape par étape",
    ),
    "coding": ("python", "function", "code", "unit test", "pytest", "implement", "def ", "docstring", "```"),
    "tool_use": ("tool", "api", "json", "function call", "search(", "browse", "agent", "yaml"),
    "safety_rewrite": ("rewrite", "safe", "harm", "policy", "refus", "reformulat", "acceptable"),
    "grading": ("score", "rate ", "rating", "grade", "judge", "verdict", "reward", "[[a]]", "evaluate"),
    "translation": (
        "translate",
        "tradu",
        "übersetz",
        "bilingual",
        "bilingue",
        "zweisprachig",
        "in english",
        "en français",
        "auf deutsch",
    ),
}


def tags_of(template: str) -> list[str]:
    """Capability tags whose lexicon occurs in the template text."""
    t = template.lower()
    return [tag for tag, words in TAG_LEXICONS.items() if any(w in t for w in words)]


@dataclass(frozen=True, slots=True)
class Signals:
    """Which optional log columns the score could use."""

    org: bool
    account_age: bool
    network: tuple[str, ...] = ()  # the network signals present (io.ingest.NETWORK_SIGNALS)


def _sigmoid(z: pl.Expr) -> pl.Expr:
    return 1.0 / (1.0 + (-z).exp())


def _sibling_counts(
    per_acct: pl.DataFrame, cfg: CampaignConfig, weights: tuple[str, ...] = ("_k",)
) -> list[NDArray[np.float64]]:
    """For each (cluster, account) row: the account's prompts in this cluster plus its sibling clusters, one
    array per column of ``weights`` (by default the window's prompts ``_k``; a stream window adds its
    accounts' earlier prompts); the siblings are found once, from ``_k``.

    Operators run several campaigns over one account pool, so an operator account's traffic splits
    between families; "does little else" must count them together. Siblings are clusters that share most
    of their traffic's accounts both ways (prompt-share overlap ≥ ``cfg.sibling_min_overlap``, at least 3
    shared accounts).
    """
    cl = per_acct["cluster_id"].to_numpy().astype(np.int64)
    # account codes: the day's (column ``account``) when the caller has them, else numbered here
    if "account" in per_acct.columns:
        acc = per_acct["account"].to_numpy().astype(np.int64)
    else:
        acc = fastops.unique_inverse(per_acct["account_id"].to_numpy())[1]
    k = per_acct["_k"].to_numpy().astype(np.float64)
    n_cl, n_acc = int(cl.max()) + 1, int(acc.max()) + 1
    a = coo_matrix((k, (cl, acc)), shape=(n_cl, n_acc)).tocsr()  # clusters x accounts, prompt counts
    size = np.asarray(a.sum(axis=1)).ravel()
    # accounts spread over very many clusters are heavy ordinary users: they do not make clusters
    # siblings, and their co-occurrence would be quadratic in their spread
    light = a.tocsc()
    light = light[:, np.flatnonzero(np.diff(light.indptr) <= max(64, n_cl // 200))].tocsr()
    present = light.copy()
    present.data[:] = 1.0
    shared = (light @ present.T).tocoo()  # [c, c'] = prompts of c from accounts seen in c'
    n_shared = (present @ present.T).tocsr()
    share = shared.data / np.maximum(size[shared.row], 1.0)
    fwd = coo_matrix((share, (shared.row, shared.col)), shape=(n_cl, n_cl)).tocsr()
    both = fwd.minimum(fwd.T).tocoo()
    # (no light account at all — one account, or a few, sending the whole day — leaves no pair: scipy then
    # answers the empty look-up with a sparse matrix, not an array)
    n_both = np.asarray(n_shared[both.row, both.col]).ravel() if both.nnz else np.zeros(0)
    ok = (both.data >= cfg.sibling_min_overlap) & (n_both >= 3)
    sib = coo_matrix((np.ones(int(ok.sum())), (both.row[ok], both.col[ok])), shape=(n_cl, n_cl)).tocsr()
    sib.setdiag(1.0)
    outs = []
    for weight in weights:
        if weight != "_k":
            w = per_acct[weight].to_numpy().astype(np.float64)
            a = coo_matrix((w, (cl, acc)), shape=(n_cl, n_acc)).tocsr()
        grouped = (sib @ a).tocsr()  # [c, account] = the account's prompts in c and its siblings
        out = np.empty(len(cl))
        for s in range(0, len(cl), 1 << 20):
            out[s : s + (1 << 20)] = np.asarray(grouped[cl[s : s + (1 << 20)], acc[s : s + (1 << 20)]]).ravel()
        outs.append(out)
    return outs


def _timing_features(p: pl.DataFrame, per_acct: pl.DataFrame, cfg: CampaignConfig) -> pl.DataFrame:
    """Synchronous bursts and rotating shifts, per cluster.

    ``burst_share``: share of the family's prompts sent in a ``burst_seconds`` window in which at least
    ``burst_min_accounts`` of its accounts were active (load-balanced fleets fire together).
    ``burst_excess``: that share beyond what the family's hourly volume gives by chance, in [-1, 1].
    ``shift_share``: share of the family's accounts with >= 2 prompts in it whose activity spans at most
    ``shift_hours`` hours, when the family itself is active in at least 16 distinct hours of the day
    (accounts taking turns around the clock); 0 otherwise.
    """
    bins = (
        p.with_columns((pl.col("timestamp").dt.epoch("s") // cfg.burst_seconds).alias("_bin"))
        .group_by("cluster_id", "_bin")
        .agg(pl.len().alias("_n"), pl.col("account_id").n_unique().alias("_acc"))
        .group_by("cluster_id")
        .agg(
            (pl.col("_n").filter(pl.col("_acc") >= cfg.burst_min_accounts).sum() / pl.col("_n").sum()).alias(
                "burst_share"
            )
        )
    )
    # the burst share a family of this volume would show by chance: per hour, r = its prompts per window;
    # a prompt is in a burst when at least burst_min_accounts - 1 others share its window (Poisson, each
    # from another account: an upper bound), so excess = (observed - expected) / (1 - expected)
    m = cfg.burst_min_accounts - 1
    rate = pl.col("_nh") * (cfg.burst_seconds / 3600.0)
    tail = 1.0 - (-rate).exp() * sum((rate.pow(i) / math.factorial(i)) for i in range(m))
    expected = (
        p.group_by("cluster_id", pl.col("timestamp").dt.truncate("1h").alias("_h"))
        .agg(pl.len().alias("_nh"))
        .sort("cluster_id", "_h")  # one summation order (see campaign_features)
        .group_by("cluster_id")
        .agg(((pl.col("_nh") * tail).sum() / pl.col("_nh").sum()).alias("_expected"))
    )
    bins = bins.join(expected, on="cluster_id", how="left").with_columns(
        ((pl.col("burst_share") - pl.col("_expected")) / (1.0 - pl.col("_expected")).clip(1e-6, None))
        .clip(-1.0, 1.0)
        .alias("burst_excess")
    )
    hours = p.group_by("cluster_id").agg(pl.col("timestamp").dt.hour().n_unique().alias("_hours_active"))
    spans = (
        per_acct.filter(pl.col("_k") >= 2)
        .with_columns(((pl.col("_last") - pl.col("_first")).dt.total_seconds() / 3600.0).alias("_span"))
        .group_by("cluster_id")
        .agg((pl.col("_span") <= cfg.shift_hours).mean().alias("_short"))
    )
    return (
        bins.join(hours, on="cluster_id", how="left")
        .join(spans, on="cluster_id", how="left")
        .with_columns(
            pl.when(pl.col("_hours_active") >= 16)
            .then(pl.col("_short").fill_null(0.0))
            .otherwise(0.0)
            .alias("shift_share")
        )
        .select("cluster_id", "burst_share", "burst_excess", "shift_share")
    )


def campaign_features(
    prompts: pl.DataFrame,
    clusters: pl.DataFrame,
    cfg: CampaignConfig,
    earlier: tuple[pl.DataFrame, pl.DataFrame] | None = None,
    earlier_accounts: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per-cluster campaign features.

    ``prompts``: one row per input prompt with ``cluster_id``, ``account_id``, ``timestamp``, ``key`` (u64
    normalised-text key) and optionally ``account`` (int64 account code), ``org_id`` / ``account_created_at``.
    ``clusters``: ``cluster_id``, ``rigidity``, ``template_coverage``, ``template``. Returns one row per cluster
    (see README). ``earlier`` (a stream window): the day so far, as (``cluster_id``, ``account_id``,
    ``prev_k``: each account's earlier prompts today that went to the family, and ``account_id``,
    ``prev_total``: its earlier prompts today; :mod:`~clusterer.campaigns.earlier`): counted with the
    window's in the account focus and the one-shot share. ``earlier_accounts`` (a stream window with open
    families): ``cluster_id``, ``earlier_accounts``, the accounts that sent the family earlier today and none
    of its prompts in the window (:mod:`~clusterer.campaigns.open`; 0 for a family holding no open family).
    """
    has_org = "org_id" in prompts.columns and prompts["org_id"].null_count() < prompts.height
    has_age = "account_created_at" in prompts.columns and prompts["account_created_at"].null_count() < prompts.height
    acct_total = prompts.group_by("account_id").agg(pl.len().alias("_acct_total"))
    if earlier is not None:
        acct_total = acct_total.join(earlier[1].select("account_id", "prev_total"), on="account_id", how="left")
    p = prompts.filter(pl.col("cluster_id") >= 0).join(acct_total, on="account_id", how="left")
    if p.height == 0:
        return pl.DataFrame()
    # sorted: a group-by's row order varies from run to run, and the float sums over these rows below must
    # add in one order (else features such as effective_accounts differ in their last digit between runs)
    per_acct = (
        p.group_by("cluster_id", "account_id")
        .agg(
            pl.len().alias("_k"),
            pl.col("_acct_total").first(),
            *([pl.col("prev_total").first().fill_null(0)] if earlier is not None else []),
            pl.col("timestamp").min().alias("_first"),
            pl.col("timestamp").max().alias("_last"),
            *([pl.col("account").first()] if "account" in p.columns else []),
        )
        .sort("cluster_id", "account_id")
    )
    if earlier is not None:
        per_acct = per_acct.join(earlier[0], on=["cluster_id", "account_id"], how="left").with_columns(
            pl.col("prev_k").fill_null(0.0)
        )
    sib = _sibling_counts(per_acct, cfg, ("_k", "prev_k") if earlier is not None else ("_k",))
    per_acct = per_acct.with_columns(pl.Series("_k_sib", sib[0]))

    def focus(k_sib: pl.Expr, total: pl.Expr) -> pl.Expr:
        # share of each account's traffic that goes to this family, averaged over the family's prompts from
        # accounts with >= 2 prompts (so a heavy user who strays in once weighs one prompt, and the
        # accounts that carry the family weigh what they send); 0.5 when every account sent one prompt
        multi = total >= 2
        share = (pl.col("_k") * k_sib / total).filter(multi).sum() / pl.col("_k").filter(multi).sum()
        return pl.when(multi.any()).then(share).otherwise(0.5)

    focus_day, k_day = None, pl.col("_k")
    if earlier is not None:
        # the day so far (a stream window): the account's earlier prompts today in this family and its
        # siblings (the window's siblings) over all its earlier prompts and the window's. It can only add
        # evidence: a campaign whose accounts send it once an hour shows its focus over the day, while a
        # family the window split from its variant (whose accounts' earlier prompts went to that variant)
        # keeps the window's own reading
        per_acct = per_acct.with_columns(
            (pl.col("_k_sib") + pl.Series(sib[1])).alias("_k_sib_day"),
            (pl.col("_k") + pl.col("prev_k")).alias("_k_day"),
            (pl.col("_acct_total") + pl.col("prev_total")).alias("_total_day"),
        )
        focus_day, k_day = focus(pl.col("_k_sib_day"), pl.col("_total_day")), pl.col("_k_day")
    window_focus = focus(pl.col("_k_sib"), pl.col("_acct_total"))
    acct_feats = per_acct.group_by("cluster_id").agg(
        (pl.max_horizontal(window_focus, focus_day) if focus_day is not None else window_focus).alias("account_focus"),
        (-((pl.col("_k") / pl.col("_k").sum()) * (pl.col("_k") / pl.col("_k").sum()).log()).sum())
        .exp()
        .alias("effective_accounts"),
        # share of the family's prompts that come from accounts sending it only once
        # (a stream window: accounts that sent it once today, by the day so far)
        (pl.col("_k").filter(k_day < 1.5).sum() / pl.col("_k").sum()).alias("single_prompt_account_share"),
    )
    # day's hour-of-day profile, to compare each cluster's against
    day_hours = np.bincount(p["timestamp"].dt.hour().to_numpy().astype(np.int64), minlength=24).astype(float)
    day_hours = (day_hours + 1.0) / (day_hours.sum() + 24.0)
    feats = (
        p.sort("timestamp")
        .group_by("cluster_id")
        .agg(
            pl.len().alias("prompts"),
            pl.col("account_id").n_unique().alias("accounts"),
            (pl.col("key").n_unique() / pl.len()).alias("slot_variety"),
            pl.col("timestamp").min().alias("first_seen"),
            pl.col("timestamp").max().alias("last_seen"),
            pl.col("timestamp").dt.hour().alias("_hours"),
            pl.col("timestamp").diff().dt.total_seconds().drop_nulls().alias("_gaps"),
            *(
                [pl.col("org_id").value_counts(sort=True).first().struct.field("count").alias("_top_org")]
                if has_org
                else []
            ),
            *(
                [
                    ((pl.col("timestamp") - pl.col("account_created_at")).dt.total_days() <= cfg.new_account_days)
                    .mean()
                    .alias("new_account_share")
                ]
                if has_age
                else []
            ),
        )
    )
    hours = feats["_hours"].to_list()
    gaps = feats["_gaps"].to_list()
    js, cv = [], []
    for h, g in zip(hours, gaps, strict=True):
        hist = np.bincount(np.asarray(h, dtype=np.int64), minlength=24).astype(float)
        q = (hist + 1.0) / (hist.sum() + 24.0)
        m = 0.5 * (q + day_hours)
        js.append(float(0.5 * np.sum(q * np.log2(q / m)) + 0.5 * np.sum(day_hours * np.log2(day_hours / m))))
        g = np.asarray(g, dtype=float)
        cv.append(float(g.std() / g.mean()) if len(g) > 2 and g.mean() > 0 else float("nan"))
    feats = feats.drop("_hours", "_gaps").with_columns(
        pl.Series("hour_profile_divergence", js), pl.Series("interarrival_cv", cv)
    )
    feats = feats.join(_timing_features(p, per_acct, cfg), on="cluster_id", how="left")
    net = network_features(prompts, cfg)
    if net is not None:
        feats = feats.join(net, on="cluster_id", how="left")
    if has_org:
        feats = feats.with_columns((pl.col("_top_org") / pl.col("prompts")).alias("top_org_share")).drop("_top_org")
    feats = feats.join(acct_feats, on="cluster_id").join(
        clusters.select(
            "cluster_id",
            *[c for c in ("rigidity", "template_coverage", "template_fit") if c in clusters.columns],
            "template",
        ),
        on="cluster_id",
        how="left",
    )
    if earlier_accounts is not None:
        feats = feats.join(earlier_accounts, on="cluster_id", how="left").with_columns(
            pl.col("earlier_accounts").fill_null(0).cast(pl.UInt32)
        )
    return feats.with_columns(
        pl.col("template").fill_null("").map_elements(tags_of, return_dtype=pl.List(pl.String)).alias("tags")
    ).sort("cluster_id")


def score_terms(feats: pl.DataFrame, cfg: CampaignConfig) -> pl.DataFrame:
    """The campaign score's evidence terms, one column ``term_<name>`` per SCORE_TERMS entry, each in [-1, 1]
    and oriented so that positive values point to an operated campaign; 0 means no evidence (a signal
    whose log column is missing counts 0):

      variety    2 · slot_variety − 1               a varied slot (+) vs one pasted text or a few phrasings (−)
      spread     ln(effective_accounts) / ln(spread_accounts), clipped to [0, 1]: many accounts (a stream
                 window: + earlier_accounts, the open families' senders it holds, where its
                 single_prompt_account_share is at least 0.5)
      focus      2 · account_focus − 1              its accounts do little else (+) or mostly other things (−)
      one_shot   −clip(2 · single_prompt_account_share − 1, 0, 1): (almost) every account came once (−);
                 operators re-use accounts even when they rotate them, while returning accounts are no
                 evidence either way (organic users and customers come back too)
      fresh      2 · new_account_share − 1          throw-away accounts (+) vs established ones (−)
      one_org    −clip(2 · (top_org_share − 0.5), 0, 1) with ≥ 3 effective accounts: one organisation's
                 API keys (a customer) pulls down
      synchrony  burst_excess                       multi-account bursts beyond what the volume explains
      peaked     −clip(hour_profile_divergence / 0.2, 0, 1): one peak of the day (a trending topic)
      crowded, proxy, rotation, payment: network and payment evidence (campaigns.network.network_terms)
    """
    cols = feats.columns
    fresh = (2.0 * pl.col("new_account_share") - 1.0) if "new_account_share" in cols else pl.lit(0.0)
    one_org = (
        pl.when(pl.col("effective_accounts") >= 3)
        .then(-((pl.col("top_org_share") - 0.5) * 2.0).clip(0.0, 1.0))
        .otherwise(0.0)
        if "top_org_share" in cols
        else pl.lit(0.0)
    )
    senders = pl.col("effective_accounts")
    if "earlier_accounts" in cols:
        # a stream window: with the senders of the open families it holds earlier today, where most of its own
        # senders sent it once (where the one-shot term starts): their return, which the account-focus term
        # reads, cannot show inside a window, and the day's spread stands in for it; returning senders show
        # their day through the focus already (campaigns.open)
        once = pl.col("single_prompt_account_share") >= ONCE
        earlier = pl.when(once).then(pl.col("earlier_accounts").fill_null(0)).otherwise(0).cast(pl.Float64)
        senders = senders + earlier
    exprs = {
        "variety": 2.0 * pl.col("slot_variety") - 1.0,
        "spread": (senders.log() / math.log(cfg.spread_accounts)).clip(0.0, 1.0),
        "focus": 2.0 * pl.col("account_focus") - 1.0,
        "one_shot": -(2.0 * pl.col("single_prompt_account_share") - 1.0).clip(0.0, 1.0),
        "fresh": fresh,
        "one_org": one_org,
        "synchrony": pl.col("burst_excess"),
        "peaked": -(pl.col("hour_profile_divergence") / 0.2).clip(0.0, 1.0),
        **network_terms(cols),
    }
    return feats.select(
        "cluster_id",
        *[
            exprs[t].cast(pl.Float64).fill_null(0.0).fill_nan(0.0).clip(-1.0, 1.0).alias(f"term_{t}")
            for t in SCORE_TERMS
        ],
    )


def score_campaigns(feats: pl.DataFrame, cfg: CampaignConfig) -> pl.DataFrame:
    """Add the evidence terms (``term_<name>``), their contributions to the logit (``contrib_<name>`` =
    weight · term, ``contrib_bias``), ``campaign_logit``, ``campaign_score`` = sigmoid(logit) in [0, 1] and
    ``flagged`` (score ≥ ``cfg.threshold``). Every weight is below |bias|, so no single term can flag a
    family on its own (checked by :class:`CampaignConfig`); the contributions show an analyst which
    evidence carried a decision.

    A family with fewer than ``cfg.min_effective_accounts`` effective accounts scores 0: one or two
    accounts, however templated, are a customer or a heavy user, not a cross-account campaign.
    """
    terms = score_terms(feats, cfg)
    contrib = [(getattr(cfg, f"w_{t}") * pl.col(f"term_{t}")).alias(f"contrib_{t}") for t in SCORE_TERMS]
    scored = feats.join(terms, on="cluster_id", how="left").with_columns(
        pl.lit(cfg.bias, dtype=pl.Float64).alias("contrib_bias"), *contrib
    )
    logit = pl.sum_horizontal("contrib_bias", *[f"contrib_{t}" for t in SCORE_TERMS])
    score = pl.when(pl.col("effective_accounts") >= cfg.min_effective_accounts).then(_sigmoid(logit)).otherwise(0.0)
    return scored.with_columns(logit.alias("campaign_logit"), score.alias("campaign_score")).with_columns(
        (pl.col("campaign_score") >= cfg.threshold).alias("flagged")
    )


def operator_groups(
    accounts: NDArray[np.int64], labels: NDArray[np.int64], flagged_clusters: NDArray[np.int64], cfg: CampaignConfig
) -> NDArray[np.int64]:
    """Operator group of every account code (−1 = none): accounts linked when they share flagged clusters.

    Account × flagged-cluster co-membership (binary) is projected onto accounts (a sparse product); two
    accounts are linked when their cluster sets overlap with Jaccard ≥ ``cfg.operator_min_jaccard`` over at
    least ``cfg.operator_min_shared`` clusters; groups are connected components of at least 2 accounts.
    Accounts with the same set of flagged clusters are collapsed into one row before the product, so it
    grows with the number of distinct membership patterns (a handful per operator), not with the square of
    a campaign's account count; that keeps it small enough that a GPU would not pay for the transfer.
    """
    n_acc = int(accounts.max()) + 1 if len(accounts) else 0
    keep = np.isin(labels, flagged_clusters)
    if n_acc == 0 or not keep.any():
        return np.full(n_acc, -1, np.int64)
    cl = np.unique(labels[keep], return_inverse=True)[1].ravel()
    pairs = np.unique(np.stack([accounts[keep], cl], axis=1), axis=0)  # (account, cluster), sorted
    acc_ids, starts = np.unique(pairs[:, 0], return_index=True)
    patterns = [pairs[s:e, 1].tobytes() for s, e in zip(starts, np.r_[starts[1:], len(pairs)], strict=True)]
    _, pat_first, pat_of = np.unique(np.array(patterns, dtype=object), return_index=True, return_inverse=True)
    pat_of = pat_of.ravel()
    n_pat = len(pat_first)
    rows = [np.frombuffer(patterns[i], dtype=pairs.dtype) for i in pat_first]
    u = coo_matrix(
        (
            np.ones(sum(len(r) for r in rows)),
            (np.repeat(np.arange(n_pat), [len(r) for r in rows]), np.concatenate(rows)),
        ),
        shape=(n_pat, int(cl.max()) + 1),
    ).tocsr()
    co = (u @ u.T).tocoo()
    deg = np.asarray(u.sum(axis=1)).ravel()
    jac = co.data / np.maximum(deg[co.row] + deg[co.col] - co.data, 1.0)
    link = (co.row != co.col) & (co.data >= cfg.operator_min_shared) & (jac >= cfg.operator_min_jaccard)
    g = coo_matrix((np.ones(int(link.sum())), (co.row[link], co.col[link])), shape=(n_pat, n_pat))
    _, pat_comp = csgraph.connected_components(g, directed=False)
    comp = np.full(n_acc, -1, np.int64)
    comp[acc_ids] = pat_comp[pat_of]
    size = np.bincount(comp[comp >= 0], minlength=int(pat_comp.max()) + 1)
    grouped = comp >= 0
    grouped[grouped] = size[comp[grouped]] >= 2
    out = np.full(n_acc, -1, np.int64)
    ids = np.unique(comp[grouped])
    out[grouped] = np.searchsorted(ids, comp[grouped])
    return out


@dataclass(frozen=True, slots=True)
class Decisions:
    """Campaign decisions of a run.

    ``clusters``: per-cluster features, ``campaign_score``, ``flagged``, ``campaign_id``; ``prompt_score``:
    float32 (n,) the score of each prompt's cluster (0 for noise); ``prompt_flagged``: bool (n,);
    ``prompt_campaign``: campaign ID per prompt (None unless flagged); ``accounts``: per-account flags and
    operator groups; ``operators``: one row per operator group; ``signals``: which optional columns were used;
    ``ordinary``: the prompts of ordinary parts of flagged families, not flagged (:func:`ordinary_parts`; None
    when not read).
    """

    clusters: pl.DataFrame
    prompt_score: NDArray[np.float32]
    prompt_flagged: NDArray[np.bool_]
    prompt_campaign: list[str | None]
    accounts: pl.DataFrame
    operators: pl.DataFrame
    signals: Signals
    ordinary: NDArray[np.bool_] | None = None  # (n,) prompts of ordinary parts of flagged families (ordinary_parts)


def operator_table(per: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """One row per operator group: ``per`` (a prompt per row: ``account_id``, ``flagged_prompt``,
    ``campaign_id``, ``timestamp``) over ``groups`` (``account_id``, ``operator_group``; −1 = none): its
    accounts, flagged prompts, campaigns and the first and last of its flagged prompts."""
    return (
        per.join(groups, on="account_id")
        .filter(pl.col("operator_group") >= 0)
        .group_by("operator_group")
        .agg(
            pl.col("account_id").n_unique().alias("accounts"),
            pl.col("flagged_prompt").sum().alias("flagged_prompts"),
            pl.col("campaign_id").drop_nulls().unique().sort().alias("campaigns"),
            pl.col("timestamp").filter(pl.col("flagged_prompt")).min().alias("first_seen"),
            pl.col("timestamp").filter(pl.col("flagged_prompt")).max().alias("last_seen"),
        )
        .sort("operator_group")
    )


# the evidence terms about who sends a cluster, not what it holds or how much of it there is: shares of its
# prompts or senders, which a part of a family reads as the whole does (focus read over the family:
# _part_focus). Left out: variety, spread, one_shot, synchrony and peaked (content and volume), and crowded,
# which counts senders per network within the cluster (a proxy pool spread over a family's parts falls below
# crowded_min_senders in each)
SENDER_TERMS = ("focus", "fresh", "one_org", "proxy", "rotation", "payment")


def sender_evidence(scored: pl.DataFrame) -> pl.Expr:
    """The sum of a scored cluster's SENDER_TERMS contributions to its logit (``score_campaigns`` columns)."""
    return pl.sum_horizontal(*[pl.col(f"contrib_{t}") for t in SENDER_TERMS if f"contrib_{t}" in scored.columns])


def ordinary_parts(
    prompts: pl.DataFrame,
    fragments: NDArray[np.int64],
    labels: NDArray[np.int64],
    in_flagged: NDArray[np.bool_],
    scored: pl.DataFrame,
    cfg: CampaignConfig,
) -> NDArray[np.bool_]:
    """bool (n,): the members of flagged families whose fragment, read on its own, is sent by ordinary users.

    A family's score pools the evidence of all its fragments. A payload pool's problems that ordinary users
    send bare ("Write a python function to …") can make a fragment that joins the family of a campaign
    wrapping the same pool: the pool's wording is in both, and a short wrapper adds little to tell them
    apart. Its members hold their fragment's core (that wording), so the per-prompt rules flag them, while
    their senders are the day's ordinary users: old accounts that mostly send other things. Each fragment of
    a flagged family is scored here on its own (:func:`campaign_features`, :func:`score_campaigns`), and one
    whose sender evidence (:func:`sender_evidence`) is negative and at least ``cfg.part_sender_gap`` below
    its family's, over at least ``cfg.min_effective_accounts`` effective accounts, is an ordinary part.

    ``prompts``: :func:`decide`'s prompt frame (its ``cluster_id`` is replaced); ``fragments`` / ``labels``:
    int64 (n,) fragment and family per prompt; ``in_flagged``: bool (n,) members of flagged families;
    ``scored``: the families' :func:`score_campaigns` table."""
    n = len(labels)
    frag = np.where(in_flagged, fragments, -1)
    if frag.max(initial=-1) < 0:
        return np.zeros(n, bool)
    info = pl.DataFrame({"cluster_id": np.unique(frag[frag >= 0])}).with_columns(pl.lit("").alias("template"))
    feats = campaign_features(prompts.with_columns(pl.Series("cluster_id", frag)), info, cfg)
    if feats.height == 0:
        return np.zeros(n, bool)
    feats = feats.drop("account_focus").join(_part_focus(prompts, frag, labels, cfg), on="cluster_id", how="left")
    part = score_campaigns(feats, cfg)
    part = part.select("cluster_id", "effective_accounts", sender_evidence(part).alias("own"))
    family = scored.select(pl.col("cluster_id").alias("family"), sender_evidence(scored).alias("whole"))
    # a fragment's members are in one family
    of = (
        pl.DataFrame({"cluster_id": frag, "family": labels})
        .filter(pl.col("cluster_id") >= 0)
        .unique("cluster_id", keep="first", maintain_order=True)
    )
    part = part.join(of, on="cluster_id").join(family, on="family", how="left")
    ordinary = part.filter(
        (pl.col("effective_accounts") >= cfg.min_effective_accounts)
        & (pl.col("own") < 0)
        & (pl.col("own") <= pl.col("whole") - cfg.part_sender_gap)
    )["cluster_id"].to_numpy()
    return (frag >= 0) & np.isin(frag, ordinary)


def _part_focus(
    prompts: pl.DataFrame, frag: NDArray[np.int64], labels: NDArray[np.int64], cfg: CampaignConfig
) -> pl.DataFrame:
    """Per fragment (``frag`` ≥ 0): the account focus its prompts give their *family* — each prompt's account's
    prompts in the family and its sibling families over all its prompts, averaged over the fragment's prompts
    from accounts with two or more (0.5 when none), as :func:`campaign_features` reads it for the family. A
    campaign account that spreads its prompts over several fragments of its family does little else, though
    each fragment holds a few of them. Returns ``cluster_id`` (the fragment), ``account_focus``."""
    rows = pl.DataFrame({"cluster_id": labels, "account_id": prompts["account_id"], "account": prompts["account"]})
    total = rows.group_by("account_id").agg(pl.len().alias("_total"))
    per_acct = (
        rows.filter(pl.col("cluster_id") >= 0)
        .group_by("cluster_id", "account_id")
        .agg(pl.len().alias("_k"), pl.col("account").first())
        .sort("cluster_id", "account_id")
    )
    per_acct = per_acct.with_columns(pl.Series("_k_sib", _sibling_counts(per_acct, cfg)[0]))
    part = (
        pl.DataFrame({"fragment": frag, "cluster_id": labels, "account_id": prompts["account_id"]})
        .filter(pl.col("fragment") >= 0)
        .join(per_acct.select("cluster_id", "account_id", "_k_sib"), on=["cluster_id", "account_id"], how="left")
        .join(total, on="account_id", how="left")
        .sort("fragment", "account_id")  # one order for the float sums, run to run
    )
    multi = pl.col("_total") >= 2
    share = (pl.col("_k_sib") / pl.col("_total")).filter(multi).mean()
    return (
        part.group_by("fragment", maintain_order=True)
        .agg(pl.when(multi.any()).then(share).otherwise(0.5).alias("account_focus"))
        .rename({"fragment": "cluster_id"})
    )


def decide(
    frame: pl.DataFrame,
    labels: NDArray[np.int64],
    keys: NDArray[np.uint64],
    clusters: pl.DataFrame,
    template_keys: list[str],
    cfg: CampaignConfig,
    namer: Callable[[list[int], list[str]], dict[int, str]] | None = None,
    fit: NDArray[np.float32] | None = None,
    *,
    shared: NDArray[np.int32] | None = None,
    copies: NDArray[np.bool_] | None = None,
    fragments: NDArray[np.int64] | None = None,
    ordinary: NDArray[np.bool_] | None = None,
    accounts: tuple[NDArray[Any], NDArray[np.int64]] | None = None,
    orgs: pl.Series | None = None,
    created: pl.Series | None = None,
    network: Network | None = None,
    earlier: tuple[pl.DataFrame, pl.DataFrame] | None = None,
    open_families: OpenFamilies | None = None,
) -> Decisions:
    """Score every cluster, flag campaigns, flag accounts and group them into operators.

    ``frame``: the prompt frame (``account_id``, ``timestamp``); ``accounts``: (account IDs, int64 (n,) code per
    prompt), numbered here when not given; ``orgs`` / ``created``: the organisation and account creation time
    per prompt when the log carries them (see ``io.ingest.sender_metadata``); ``labels``: int64 (n,) cluster per
    prompt; ``keys``: uint64 (n,) normalised-text keys;
    ``clusters``: ``cluster_id``, ``rigidity``, ``template_coverage``, ``template``; ``template_keys[c]``:
    the content key of cluster c's template; ``fit``: float32 (n,) share of its fragment's scaffold each
    prompt carries (a prompt that carries it is flagged in a flagged family even when its account mostly
    sends other things); ``shared``: int32 (n,) how many of its shingles each prompt shares with a real part
    of its fragment (a prompt sharing fewer than ``prompt_min_shared`` is never flagged: an ordinary text some
    members carry as payload); ``copies``: bool (n,) copies of a popular prompt inside a campaign's family
    (never flagged; :func:`~clusterer.clustering.refine.payload_copies`); ``fragments``: int64 (n,) the fragment
    of each prompt, whose own senders are read in a batch run (:func:`ordinary_parts`; None: not read);
    ``ordinary``: the prompts of ordinary parts as an earlier decision over the same fragments found them
    (read instead of ``fragments``: the families joined as variants are decided again).
    ``namer(flagged cluster ids, proposed
    ids)`` may rename the
    flagged families' campaign IDs (the registry does); by default a family's ID is ``cmp-<template key>``.
    ``network``: the optional network and payment columns per prompt (``io.ingest.network_metadata``).
    ``earlier``: a stream window's day so far (:func:`campaign_features`); ``open_families``: the open families
    a stream window holds as context (:mod:`~clusterer.campaigns.open`), whose earlier senders its spread counts.
    """
    n = frame.height
    acc_codes, acc_index = accounts if accounts is not None else fastops.unique_inverse(frame["account_id"].to_numpy())
    prompts = pl.DataFrame(
        {
            "cluster_id": labels,
            "account_id": frame["account_id"],
            "account": acc_index,
            "timestamp": frame["timestamp"],
            "key": keys,
        }
    )
    if orgs is not None:
        prompts = prompts.with_columns(orgs.alias("org_id"))
    if created is not None:
        prompts = prompts.with_columns(created.alias("account_created_at"))
    prompts = with_network(prompts, network, orgs)
    present = network.present if network is not None else ()
    signals = Signals(org=orgs is not None, account_age=created is not None, network=present)
    read, extra = prompts, None
    if open_families is not None and open_families.rows.height:
        # the open families' exemplars only link the window's family to them: the spread counts their senders
        # (earlier_accounts); the features read the window's rows alone (an exemplar's account reads it among
        # its earlier prompts today, ``earlier``)
        own = open_families.own_rows(n)
        extra = earlier_accounts(labels, frame["account_id"], open_families, own)
        read = prompts.filter(pl.Series(own))
    feats = campaign_features(read, clusters, cfg, earlier, extra)
    if feats.height == 0:
        scored = pl.DataFrame(
            schema={
                "cluster_id": pl.Int64,
                "campaign_score": pl.Float64,
                "flagged": pl.Boolean,
                "campaign_id": pl.String,
            }
        )
    else:
        scored = score_campaigns(feats, cfg)
        proposed = {c: f"cmp-{template_keys[c] or f'x{c}'}" for c in scored["cluster_id"].to_list()}
        flagged_ids = scored.filter(pl.col("flagged"))["cluster_id"].to_list()
        if namer is not None:
            proposed.update(namer(flagged_ids, [proposed[c] for c in flagged_ids]))
        ids = [proposed[c] for c in scored["cluster_id"].to_list()]
        scored = scored.with_columns(
            pl.when(pl.col("flagged")).then(pl.Series(ids, dtype=pl.String)).otherwise(None).alias("campaign_id")
        )
    k = int(labels.max()) + 1 if n and labels.max() >= 0 else 0
    score_of = np.zeros(k, np.float32)
    flag_of = np.zeros(k, bool)
    id_of: list[str | None] = [None] * k
    for c, s, f, cid in zip(
        scored["cluster_id"], scored["campaign_score"], scored["flagged"], scored["campaign_id"], strict=True
    ):
        score_of[c], flag_of[c], id_of[c] = s, f, cid
    member = labels >= 0
    prompt_score = np.where(member, score_of[np.maximum(labels, 0)] if k else 0.0, 0.0).astype(np.float32)
    in_flagged = member & (flag_of[np.maximum(labels, 0)] if k else False)
    prompt_campaign = [id_of[c] if c >= 0 else None for c in labels.tolist()]

    acc_index = acc_index.ravel()
    share = np.bincount(acc_index, weights=in_flagged, minlength=len(acc_codes)) / np.maximum(
        np.bincount(acc_index, minlength=len(acc_codes)), 1
    )
    n_in_flagged = np.bincount(acc_index, weights=in_flagged, minlength=len(acc_codes))
    # an account works flagged families when most of its prompts are there, or when it sent several of
    # them (operators hide behind ordinary cover traffic; a regular user strays into a campaign once)
    acc_flagged = (share >= cfg.account_min_share) | (n_in_flagged >= cfg.account_min_prompts)
    # a prompt is flagged when it is in a flagged family and its account works flagged families
    # ... or the prompt itself carries its family's scaffold (``fit``: share of its fragment's core)
    carries = fit >= cfg.prompt_min_fit if fit is not None else np.zeros(n, bool)
    prompt_flagged = in_flagged & (acc_flagged[acc_index] | carries)
    # ... and it shares its fragment's template (a variant's own lines count), not only a few members' payload
    if shared is not None and cfg.prompt_min_shared > 0:
        prompt_flagged &= shared >= cfg.prompt_min_shared
    # ... and it is not a copy of a payload its family's campaign prompts wrap
    if copies is not None:
        prompt_flagged &= ~copies
    # ... and its part of the family, read on its own, is not sent by ordinary users (batch runs: a window's
    # focus reads its accounts' day so far per family)
    if ordinary is None and fragments is not None and cfg.part_sender_gap > 0 and earlier is None and extra is None:
        ordinary = ordinary_parts(read, fragments, labels, in_flagged, scored, cfg)
    if ordinary is not None:
        prompt_flagged &= ~ordinary
    # an account is flagged when any of its prompts is
    acc_flagged = np.bincount(acc_index, weights=prompt_flagged, minlength=len(acc_codes)) > 0
    groups = operator_groups(acc_index, np.where(prompt_flagged, labels, -1), np.flatnonzero(flag_of), cfg)
    per = pl.DataFrame(
        {
            "account_id": frame["account_id"],
            "flagged_prompt": prompt_flagged,
            "campaign_id": pl.Series(prompt_campaign, dtype=pl.String),
            "timestamp": frame["timestamp"],
        }
    )
    accounts = (
        per.group_by("account_id")
        .agg(pl.col("campaign_id").drop_nulls().unique().sort().alias("campaigns"))
        .join(
            pl.DataFrame({"account_id": acc_codes.astype(str), "flagged_share": share, "flagged": acc_flagged}),
            on="account_id",
        )
    )
    accounts = accounts.join(
        pl.DataFrame({"account_id": acc_codes.astype(str), "operator_group": groups}), on="account_id", how="left"
    )
    operators = operator_table(per, accounts.select("account_id", "operator_group"))
    return Decisions(
        clusters=scored,
        prompt_score=prompt_score,
        prompt_flagged=prompt_flagged,
        prompt_campaign=prompt_campaign,
        accounts=accounts,
        operators=operators,
        signals=signals,
        ordinary=ordinary,
    )
