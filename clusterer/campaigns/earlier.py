"""A stream window's families read with the day so far: how many of each account's earlier prompts today
went to each family of the window.

Inside one window a load-balanced campaign sends each of its accounts one prompt, so the window alone says
nothing of what those accounts do besides it (the account-focus term is neutral and every account looks
like a one-shot sender), while over the day they send it several prompts and little else. For the accounts
of a window, their earlier prompts today (the latest few each, with their count) are matched to the
window's families by template: an earlier prompt went to a family when it holds the core of one of the
family's fragments (its variants: the skeleton shingles at least half the fragment's members hold) by the
attach rule (``cluster.attach_template`` of the core and at least ``cluster.attach_template_shingles`` of
it). :func:`~clusterer.campaigns.decisions.
campaign_features` then counts those prompts with the window's in the account's focus and one-shot share.
Nothing is clustered again and no earlier prompt is output or counted in a family's size.
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
    """The day's earlier prompts of a window's accounts: ``prompts`` (``account_id``, ``text`` as logged)
    the latest ones of each account, ``totals`` (``account_id``, ``prev_total``: its earlier prompts today,
    ``sampled``: how many of them ``prompts`` holds) and ``normalise`` (texts → normalised texts, as the
    window's were; applied only to the prompts of accounts that sent a family of the window)."""

    prompts: pl.DataFrame
    totals: pl.DataFrame
    normalise: Callable[[pl.Series], pl.Series]


def _fragment_cores(
    fragments: NDArray[np.int64],
    labels: NDArray[np.int64],
    indptr: NDArray[np.int64],
    hashes: NDArray[np.uint64],
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Each fragment's core (``fragment``, ``h``: the shingles at least half its members hold), its size
    (``fragment``, ``core``) and its family (``fragment``, ``cluster_id``: the one most of its rows are in)."""
    _, c, h, count, size = member_table(fragments, indptr, hashes)
    core_rows = 2 * count.astype(np.int64) >= size[c]
    core = pl.DataFrame({"fragment": c[core_rows].astype(np.int64), "h": h[core_rows]})
    core_size = core.group_by("fragment").agg(pl.len().alias("core"))
    family = (
        pl.DataFrame({"fragment": fragments, "cluster_id": labels})
        .filter((pl.col("fragment") >= 0) & (pl.col("cluster_id") >= 0))
        .group_by("fragment", "cluster_id")
        .len()
        .sort("fragment", "len", "cluster_id", descending=[False, True, False])
        .group_by("fragment", maintain_order=True)
        .first()
        .select("fragment", "cluster_id")
    )
    return core, core_size, family


def earlier_in_families(
    fragments: NDArray[np.int64],
    labels: NDArray[np.int64],
    indptr: NDArray[np.int64],
    hashes: NDArray[np.uint64],
    pairs: pl.DataFrame,
    earlier: Earlier,
    ngram: int,
    min_share: float,
    min_shingles: int,
) -> pl.DataFrame:
    """Per (``cluster_id``, ``account_id``) of ``pairs`` (the window's families and their accounts), the
    account's earlier prompts today that carry the family's core, as a float ``prev_k``: the matches among
    its sampled earlier prompts scaled to all of them (``prev_total / sampled``). ``labels``: the family of
    each embedded row; ``indptr`` / ``hashes``: their skeleton shingles (CSR). Pairs without a match are
    left out. The cores are the fragments' (``fragments``: the HDBSCAN cluster of each embedded row, before
    noise was attached): a family of several variants has one core per variant, and a prompt of any of them
    went to the family."""
    schema = {"cluster_id": pl.Int64, "account_id": pl.String, "prev_k": pl.Float64}
    k = int(fragments.max()) + 1 if len(fragments) and fragments.max() >= 0 else 0
    if k == 0 or earlier.prompts.height == 0 or pairs.height == 0:
        return pl.DataFrame(schema=schema)
    core, core_size, family = _fragment_cores(fragments, labels, indptr, hashes)
    # only the accounts that sent a family of the window are read
    mine = earlier.prompts.join(
        pairs.select(pl.col("account_id").cast(pl.String)).unique(), on="account_id", how="semi"
    )
    if mine.height == 0:
        return pl.DataFrame(schema=schema)
    parts = []
    # in chunks: tokenising tens of thousands of long prompts at once holds every token of them (a peak of
    # hundreds of MB in a 1M day's busiest windows); a chunk's shingles are matched and dropped
    for start in range(0, mine.height, _CHUNK):
        e_indptr, e_hashes = shingle_sets(earlier.normalise(mine["text"].slice(start, _CHUNK)), ngram)
        e = start + np.repeat(np.arange(len(e_indptr) - 1, dtype=np.int64), np.diff(e_indptr))
        parts.append(
            pl.DataFrame({"e": e, "h": e_hashes})
            .join(core, on="h")
            .group_by("e", "fragment")
            .agg(pl.len().alias("n"))
            .join(core_size, on="fragment")
            .filter((pl.col("n") >= min_shingles) & (pl.col("n") >= min_share * pl.col("core")))
            .join(family, on="fragment")
            .select("e", "cluster_id")
            .unique()
        )
        del e_indptr, e_hashes, e
    held = pl.concat(parts)
    account = mine.select(pl.col("account_id").cast(pl.String)).with_row_index("e").cast({"e": pl.Int64})
    return (
        held.join(account, on="e")
        .join(
            pairs.select(pl.col("cluster_id").cast(pl.Int64), pl.col("account_id").cast(pl.String)),
            on=["cluster_id", "account_id"],
            how="semi",
        )
        .group_by("cluster_id", "account_id")
        .agg(pl.len().alias("matched"))
        .join(earlier.totals, on="account_id")
        .select(
            "cluster_id",
            "account_id",
            (pl.col("matched") * pl.col("prev_total") / pl.col("sampled").clip(lower_bound=1))
            .cast(pl.Float64)
            .alias("prev_k"),
        )
    )


def earlier_prompts(
    rows: pl.DataFrame,
    per_account: int,
    texts: Callable[[NDArray[np.int64]], pl.Series],
    normalise: Callable[[pl.Series], pl.Series],
) -> Earlier:
    """:class:`Earlier` from ``rows`` (a window's accounts' earlier prompts today: ``account_id``,
    ``timestamp`` and ``_i``, the row's index into the day): the latest ``per_account`` of each account, their
    texts fetched by ``texts`` (row indices → Series) for those only, and each account's count."""
    totals = rows.group_by("account_id").agg(pl.len().cast(pl.Int64).alias("prev_total"))
    latest = rows.sort("account_id", "timestamp", "_i").group_by("account_id", maintain_order=True).tail(per_account)
    sampled = latest.group_by("account_id").agg(pl.len().cast(pl.Int64).alias("sampled"))
    idx = latest["_i"].to_numpy().astype(np.int64)
    prompts = pl.DataFrame({"account_id": latest["account_id"], "text": texts(idx)})
    totals = totals.join(sampled, on="account_id", how="left").fill_null(0)
    return Earlier(prompts=prompts, totals=totals, normalise=normalise)
