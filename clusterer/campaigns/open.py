"""A stream window's families read with the open families of the window before it: the accounts a family
was sent by earlier today count in its spread.

The spread term reads a family's effective number of accounts, log-scaled to ``campaign.spread_accounts``
(300), as a batch run reads it over the whole day. Inside one window a campaign of throw-away accounts that
send one prompt each shows only that window's senders: an hour of a campaign reads as a small family, and
it is flagged only once its accounts return (the account-focus term, :mod:`~clusterer.campaigns.earlier`)
— two or three windows after its start. So a family of a window that was not flagged, scored within reach
of the threshold (``campaign.window_open_min_score``) and is one tight template (cohesion and template
coverage at least ``campaign.window_open_min_cohesion`` and ``window_open_min_coverage``: a family of one
kind of ordinary question is loose, and its senders over the day are no campaign's), and most of whose
senders sent it once today (below) is kept *open*: its
latest ``campaign.window_open_exemplars`` prompts are clustered again with the next window, as context and
not output (as a flagged campaign's exemplars are), and the accounts that sent it so far today are kept (at
most twice ``spread_accounts``: the term is full there). A family of the next window that holds an open
family's exemplars counts that family's accounts, less the senders of its own rows, as
``earlier_accounts``, and where most of its senders sent it once today (``single_prompt_account_share`` ≥
0.5, where the one-shot term starts) the spread term reads ``ln(effective_accounts + earlier_accounts)``:
the day so far, as the batch run of the day reads it. Those accounts' return, which the account-focus term
reads, cannot show inside a window, and the day's spread stands in for it; a family whose senders return
shows their day through the focus already, and adding the day's spread to that lifted families of returning
pasters of one ordinary template (measured on ``public_hard_100k``: 48 more ordinary prompts flagged). An
open family whose exemplars a family of the next window holds that qualifies again (not flagged, the score,
the template and the one-shot senders above) stays open with the accounts of both; any other ends, and so
do all at the end of a day.

Only the spread reads them: the exemplars link the window's family to the open family, and the score's
features read the family's own rows alone (an exemplar's account reads it among its earlier prompts today,
:mod:`~clusterer.campaigns.earlier`); like the campaigns' exemplars, they count in the window's
``clusters.parquet`` (its ``exemplars`` column) and are not output. The gate of ``min_effective_accounts``
reads the window's own senders: a family needs them to be scored at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..config import CampaignConfig

KEY = "_open"  # the open family an exemplar row was kept for: "<window's output set>/<family>"
ONCE = 0.5  # families most of whose senders sent them once today: where the one-shot term starts


@dataclass(frozen=True, slots=True)
class OpenFamilies:
    """The open families a window reads: ``rows`` (``_row``: the input row of each exemplar clustered with the
    window, ``_open``: its open family) and ``accounts`` (``_open``, ``account_id``: the accounts that sent
    the family so far today)."""

    rows: pl.DataFrame
    accounts: pl.DataFrame

    def own_rows(self, n: int) -> NDArray[np.bool_]:
        """Which of a window's ``n`` input rows are its own: all but the open families' exemplars."""
        own = np.ones(n, bool)
        own[self.rows["_row"].to_numpy()] = False
        return own


def earlier_accounts(
    labels: NDArray[np.int64],
    account_ids: pl.Series,
    open_families: OpenFamilies,
    own: NDArray[np.bool_] | None = None,
) -> pl.DataFrame:
    """Per family (``cluster_id``) the accounts that sent the open families whose exemplars it holds, less
    the senders of its own rows (``labels``, ``account_ids``: each input row's family and account; ``own``:
    :meth:`OpenFamilies.own_rows`, the exemplars' rows are not its own): ``cluster_id``, ``earlier_accounts``
    (u32); families holding no exemplar are left out."""
    own = open_families.own_rows(len(labels)) if own is None else own
    rows = pl.DataFrame({"cluster_id": labels, "account_id": account_ids.cast(pl.String)}).with_row_index("_row")
    ex = open_families.rows.select(pl.col("_row").cast(pl.UInt32), KEY)
    held = rows.join(ex, on="_row").filter(pl.col("cluster_id") >= 0).select("cluster_id", KEY).unique()
    senders = rows.filter(pl.Series(own) & (pl.col("cluster_id") >= 0)).select("cluster_id", "account_id").unique()
    return (
        held.join(open_families.accounts.select(KEY, pl.col("account_id").cast(pl.String)), on=KEY)
        .select("cluster_id", "account_id")
        .unique()
        .join(senders, on=["cluster_id", "account_id"], how="anti")
        .group_by("cluster_id")
        .agg(pl.len().cast(pl.UInt32).alias("earlier_accounts"))
        .sort("cluster_id")
    )


def next_open(
    families: pl.DataFrame,
    own: pl.DataFrame,
    held: pl.DataFrame,
    accounts: pl.DataFrame | None,
    name: str,
    cfg: CampaignConfig,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The open families after a window (``name``: its output set): its families (``families``: ``cluster_id``,
    ``campaign_score``, ``flagged``, ``cohesion``, ``template_coverage``, ``single_prompt_account_share``) not
    flagged that scored at least ``cfg.window_open_min_score``, are one tight template
    (``cfg.window_open_min_cohesion``, ``cfg.window_open_min_coverage``) and most of whose senders sent them
    once today (the families whose spread reads the day's senders), each with its latest
    ``cfg.window_open_exemplars`` own rows (``own``: the window's rows with their ``cluster_id``) as
    exemplars, keyed ``<name>/<family>``, and its accounts: its own and those of the open families whose
    exemplars it held (``held``: ``_open``, ``cluster_id``; ``accounts``: the open families before the
    window), at most ``2 ceil(cfg.spread_accounts)`` of them (the spread is full at ``spread_accounts``; the
    next window takes its own senders off). Returns (the exemplar rows with ``_open``, the accounts:
    ``_open``, ``account_id``)."""
    cap = 2 * math.ceil(cfg.spread_accounts)  # the next window's own senders are taken off: room for them
    if cfg.window_open_exemplars == 0:  # off
        return own.drop("cluster_id").head(0).with_columns(pl.lit(None, pl.String).alias(KEY)), pl.DataFrame(
            schema={KEY: pl.String, "account_id": pl.String}
        )
    keep = families.filter(
        ~pl.col("flagged").fill_null(False)
        & (pl.col("campaign_score") >= cfg.window_open_min_score)
        & (pl.col("cohesion") >= cfg.window_open_min_cohesion)
        & (pl.col("template_coverage") >= cfg.window_open_min_coverage)
        & (pl.col("single_prompt_account_share") >= ONCE)  # the only families whose spread reads them
    ).select("cluster_id")
    key = pl.format("{}/{}", pl.lit(name), pl.col("cluster_id")).alias(KEY)
    kept = own.join(keep, on="cluster_id")
    rows = (
        kept.sort(["timestamp", "prompt_id"], descending=True)
        .group_by("cluster_id", maintain_order=True)
        .head(cfg.window_open_exemplars)
        .with_columns(key)
        .drop("cluster_id")
        .sort([KEY, "timestamp", "prompt_id"])
    )
    parts = [kept.select("cluster_id", pl.col("account_id").cast(pl.String))]
    if accounts is not None and accounts.height and held.height:
        before = held.join(keep, on="cluster_id").join(accounts, on=KEY)
        parts.append(before.select("cluster_id", pl.col("account_id").cast(pl.String)))
    acc = (
        pl.concat(parts)
        .unique()
        .sort("cluster_id", "account_id")
        .group_by("cluster_id", maintain_order=True)
        .head(cap)
        .select(key, "account_id")
    )
    return rows, acc.filter(pl.col(KEY).is_in(rows[KEY].unique().implode()))  # an open family is its exemplars
