"""A stream window's families read with the day so far: how many of each account's earlier prompts today
went to each family of the window.

Inside one window a load-balanced campaign sends each of its accounts one prompt, so the window alone says
nothing of what those accounts do besides it (the account-focus term is neutral and every account looks
like a one-shot sender), while over the day they send it several prompts and little else. For the accounts
of a window, their earlier prompts today (the latest few each, with their count) are matched to the
window's families by template: an earlier prompt went to a family when it holds the core of one of the
family's fragments (its variants: the skeleton shingles at least half the fragment's members hold) by the
attach rule (``cluster.attach_template`` of the core and at least ``cluster.attach_template_shingles`` of
it). :func:`~clusterer.campaigns.decisions.campaign_features` then counts those prompts with the window's in
the account's focus and one-shot share, and the family grouping counts them as the accounts' prompts of the
template group holding the fragment (:class:`~clusterer.clustering.families.DaySenders`: two paraphrased
variants of a load-balanced campaign share no account inside one hour). Nothing is clustered again, no
earlier prompt is output, and a family's size, accounts and spread stay the window's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..clustering.refine import member_table
from ..text.skeleton import shingle_sets

_CHUNK = 4096  # earlier prompts shingled and matched at a time


@dataclass(frozen=True, slots=True)
class Earlier:
    """The day's earlier prompts of a window's accounts: ``prompts`` (``account_id``, ``timestamp``, ``text`` as
    logged) the latest ones of each account, ``totals`` (``account_id``, ``prev_total``: its earlier prompts today,
    ``sampled``: how many of them ``prompts`` holds) and ``normalise`` (texts → normalised texts, as the
    window's were; applied only to the prompts of accounts that sent a fragment or family of the window)."""

    prompts: pl.DataFrame
    totals: pl.DataFrame
    normalise: Callable[[pl.Series], pl.Series]


def _fragment_cores(
    fragments: NDArray[np.int64], indptr: NDArray[np.int64], hashes: NDArray[np.uint64]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each fragment's core (``fragment``, ``h``: the shingles at least half its members hold) and its size
    (``fragment``, ``core``)."""
    _, c, h, count, size = member_table(fragments, indptr, hashes)
    core_rows = 2 * count.astype(np.int64) >= size[c]
    core = pl.DataFrame({"fragment": c[core_rows].astype(np.int64), "h": h[core_rows]})
    return core, core.group_by("fragment").agg(pl.len().alias("core"))


def fragment_families(fragments: NDArray[np.int64], labels: NDArray[np.int64]) -> pl.DataFrame:
    """Each fragment's family (``fragment``, ``cluster_id``: the one most of its rows are in; ties: the
    smaller)."""
    return (
        pl.DataFrame({"fragment": fragments, "cluster_id": labels})
        .filter((pl.col("fragment") >= 0) & (pl.col("cluster_id") >= 0))
        .group_by("fragment", "cluster_id")
        .len()
        .sort("fragment", "len", "cluster_id", descending=[False, True, False])
        .group_by("fragment", maintain_order=True)
        .first()
        .select("fragment", "cluster_id")
    )


HITS_SCHEMA = {"e": pl.Int64, "fragment": pl.Int64, "share": pl.Float64}


@dataclass(frozen=True, slots=True)
class Cores:
    """The window's fragment cores (:func:`fragment_cores`): ``core`` (``fragment``, ``h``) and ``size``
    (``fragment``, ``core``: its shingles)."""

    core: pl.DataFrame
    size: pl.DataFrame


def fragment_cores(fragments: NDArray[np.int64], indptr: NDArray[np.int64], hashes: NDArray[np.uint64]) -> Cores:
    """Each fragment's core: the shingles at least half its members hold (``fragments``: the HDBSCAN cluster
    of each embedded row, before noise was attached; ``indptr`` / ``hashes``: their skeleton shingles, CSR)."""
    return Cores(*_fragment_cores(fragments, indptr, hashes))


def earlier_hits(
    cores: Cores,
    earlier: Earlier,
    accounts: pl.Series,
    ngram: int,
    min_share: float,
    min_shingles: int,
) -> pl.DataFrame:
    """The earlier prompts of ``accounts`` that carry a fragment's core (``cores``: :func:`fragment_cores`),
    one row per (``e``: the prompt's row in ``earlier.prompts``, ``fragment``, ``share``: the share of the
    core it holds). The cores are the fragments', not the families': a family of several variants has one
    core per variant, and a prompt of any of them holds the family's template."""
    if cores.size.height == 0 or earlier.prompts.height == 0 or accounts.len() == 0:
        return pl.DataFrame(schema=HITS_SCHEMA)
    core, core_size = cores.core, cores.size
    rows = (
        earlier.prompts.with_row_index("e")
        .filter(pl.col("account_id").is_in(accounts.cast(pl.String).unique().implode()))
        .select(pl.col("e").cast(pl.Int64), "text")
    )
    parts = [pl.DataFrame(schema=HITS_SCHEMA)]
    # in chunks: tokenising tens of thousands of long prompts at once holds every token of them (a peak of
    # hundreds of MB in a 1M day's busiest windows); a chunk's shingles are matched and dropped
    for start in range(0, rows.height, _CHUNK):
        chunk = rows.slice(start, _CHUNK)
        e_indptr, e_hashes = shingle_sets(earlier.normalise(chunk["text"]), ngram)
        e = chunk["e"].to_numpy()[np.repeat(np.arange(len(e_indptr) - 1, dtype=np.int64), np.diff(e_indptr))]
        parts.append(
            pl.DataFrame({"e": e, "h": e_hashes})
            .join(core, on="h")
            .group_by("e", "fragment")
            .agg(pl.len().alias("n"))
            .join(core_size, on="fragment")
            .filter((pl.col("n") >= min_shingles) & (pl.col("n") >= min_share * pl.col("core")))
            .select("e", "fragment", (pl.col("n") / pl.col("core")).cast(pl.Float64).alias("share"))
        )
        del e_indptr, e_hashes, e
    return pl.concat(parts).sort("e", "fragment")


def hit_weights(hits: pl.DataFrame, earlier: Earlier) -> pl.DataFrame:
    """``hits`` (:func:`earlier_hits`) with each prompt's account (``account_id``), ``timestamp`` and weight (``w``: the
    account's earlier prompts today over those sampled, so the sampled matches stand for all of them)."""
    account = earlier.prompts.select(pl.col("account_id").cast(pl.String), "timestamp").with_row_index("e")
    weight = earlier.totals.select(
        "account_id", (pl.col("prev_total") / pl.col("sampled").clip(lower_bound=1)).cast(pl.Float64).alias("w")
    )
    return hits.join(account.cast({"e": pl.Int64}), on="e").join(weight, on="account_id")


def earlier_in_families(
    hits: pl.DataFrame, fragments: NDArray[np.int64], labels: NDArray[np.int64], pairs: pl.DataFrame, earlier: Earlier
) -> pl.DataFrame:
    """Per (``cluster_id``, ``account_id``) of ``pairs`` (the window's families and their accounts), the
    account's earlier prompts today that went to the family (held one of its fragments' cores:
    :func:`earlier_hits`), as a float ``prev_k``: the matches among its sampled earlier prompts scaled to all
    of them. ``labels``: the family of each embedded row; ``fragments``: its HDBSCAN cluster. Pairs without
    a match are left out."""
    schema = {"cluster_id": pl.Int64, "account_id": pl.String, "prev_k": pl.Float64}
    if hits.height == 0 or pairs.height == 0:
        return pl.DataFrame(schema=schema)
    return (
        hit_weights(hits.join(fragment_families(fragments, labels), on="fragment"), earlier)
        .unique(["e", "cluster_id"])
        .join(
            pairs.select(pl.col("cluster_id").cast(pl.Int64), pl.col("account_id").cast(pl.String)),
            on=["cluster_id", "account_id"],
            how="semi",
        )
        .group_by("cluster_id", "account_id")
        .agg(pl.col("w").sum().alias("prev_k"))
        .select(list(schema))
    )


def earlier_prompts(
    rows: pl.DataFrame,
    per_account: int,
    texts: Callable[[NDArray[np.int64]], pl.Series],
    normalise: Callable[[pl.Series], pl.Series],
) -> Earlier:
    """:class:`Earlier` from ``rows`` (a window's accounts' earlier prompts today: ``account_id``,
    ``timestamp`` and ``_i``, the row's index into the day, and optionally ``held``: the window holds the
    prompt as a row too, an open family's exemplar): the latest ``per_account`` of each account, their texts
    fetched by ``texts`` (row indices → Series) for those only, and each account's count."""
    totals = rows.group_by("account_id").agg(pl.len().cast(pl.Int64).alias("prev_total"))
    latest = rows.sort("account_id", "timestamp", "_i").group_by("account_id", maintain_order=True).tail(per_account)
    sampled = latest.group_by("account_id").agg(pl.len().cast(pl.Int64).alias("sampled"))
    idx = latest["_i"].to_numpy().astype(np.int64)
    prompts = pl.DataFrame({"account_id": latest["account_id"], "timestamp": latest["timestamp"], "text": texts(idx)})
    if "held" in latest.columns:
        prompts = prompts.with_columns(latest["held"])
    totals = totals.join(sampled, on="account_id", how="left").fill_null(0)
    return Earlier(prompts=prompts, totals=totals, normalise=normalise)
