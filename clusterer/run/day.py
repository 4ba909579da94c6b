"""The shared day object: what every stage needs to know about the day's rows, computed once.

A day has ``n`` input rows (the validated prompt frame, in input order) and ``m`` *embedded* rows: those with
text left after normalisation and a timestamp; only they are embedded, linked and clustered. Per-stage arrays
are aligned with the embedded rows; outputs are per input row. :class:`Day` holds the mapping between the two
(``rows``), the account and organisation codes, the day's date, and the helpers that scatter embedded-row
values back to input rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..accel import fastops
from ..config import IngestConfig
from ..io.ingest import Network, Prompts, network_metadata, sender_metadata
from ..text.normalise import Normalised


def day_of(timestamps: pl.Series) -> dt.date | None:
    """The day a log covers: the UTC date of its median timestamp (None without timestamps)."""
    ts = timestamps.drop_nulls().sort()
    return ts[len(ts) // 2].date() if len(ts) else None


def day_span(timestamps: pl.Series, day: dt.date | None) -> dict[str, Any]:
    """The first and last timestamp of a log (ISO 8601, UTC) and how many rows fall outside its ``day``
    (:func:`day_of`): a run of several days' logs is dated by the median row and its registry rows count
    every row on that one date."""
    ts = timestamps.drop_nulls()
    if ts.len() == 0 or day is None:
        return {"first": None, "last": None, "rows_outside_day": 0}
    outside = int((ts.dt.date() != day).sum())
    return {"first": ts.min().isoformat(), "last": ts.max().isoformat(), "rows_outside_day": outside}


@dataclass(frozen=True, slots=True)
class Day:
    """One day of prompts as the stages see it.

    ``prompts``: the validated input; ``norm``: normalised text per input row; ``rows``: int64 (m,) the input
    row of each embedded row; ``texts``: their normalised texts; ``accounts``: int64 (n,) account code per
    input row (index into ``account_ids``, sorted); ``orgs``: the organisation per input row as a string
    Series (a null among non-null values filled with one organisation per account), None when the log has no
    organisation column (see :attr:`has_orgs`); ``org_codes``: int64 (m,) organisation code per embedded row
    (None likewise); ``created``: account creation time per input row (UTC), None without it; ``network``: the
    optional network and payment columns per input row; ``date``: the UTC date of the median timestamp (None
    without timestamps).
    """

    prompts: Prompts
    norm: Normalised
    rows: NDArray[np.int64]
    texts: pl.Series
    account_ids: NDArray[Any]
    accounts: NDArray[np.int64]
    orgs: pl.Series | None
    org_codes: NDArray[np.int64] | None
    created: pl.Series | None
    network: Network
    date: dt.date | None

    @property
    def frame(self) -> pl.DataFrame:
        return self.prompts.frame

    @property
    def n(self) -> int:
        """Input rows."""
        return self.prompts.frame.height

    @property
    def m(self) -> int:
        """Embedded rows."""
        return len(self.rows)

    @property
    def has_orgs(self) -> bool:
        """Whether the organisation signal is there (a column not null throughout)."""
        return self.orgs is not None and self.orgs.null_count() < len(self.orgs)

    @property
    def no_timestamp(self) -> NDArray[np.bool_]:
        """bool (n,): rows left out for a null timestamp (only with ``ingest.null_timestamps = "skip"``)."""
        return self.frame["timestamp"].is_null().to_numpy()

    def scatter(self, values: NDArray[Any], fill: Any, dtype: Any = None) -> NDArray[Any]:
        """Per input row: ``values`` (aligned with the embedded rows) at their rows, ``fill`` elsewhere."""
        out = np.full(self.n, fill, dtype=dtype if dtype is not None else np.asarray(values).dtype)
        out[self.rows] = values
        return out

    def times(self) -> NDArray[np.int64]:
        """int64 (m,): epoch seconds of each embedded row."""
        return self.frame["timestamp"].gather(self.rows).dt.epoch("s").fill_null(0).to_numpy()

    @classmethod
    def build(cls, prompts: Prompts, norm: Normalised, cfg: IngestConfig) -> Day:
        """The day of ``prompts`` normalised as ``norm``."""
        frame = prompts.frame
        no_time = frame["timestamp"].is_null().to_numpy()
        rows = np.flatnonzero(~norm.empty & ~no_time).astype(np.int64)
        account_ids, accounts = fastops.unique_inverse(frame["account_id"].to_numpy())
        orgs, created = sender_metadata(frame, cfg)
        org_codes = None
        if orgs is not None:
            org = orgs.gather(rows)
            org_codes = np.where(org.is_null().to_numpy(), -1, fastops.unique_inverse(org.fill_null("").to_numpy())[1])
            org_codes = org_codes.astype(np.int64)
        return cls(
            prompts=prompts,
            norm=norm,
            rows=rows,
            # every row embedded (the usual day): the same Series, not a copy of the day's text
            texts=norm.text if len(rows) == len(norm.text) else norm.text.gather(rows),
            account_ids=account_ids,
            accounts=accounts.astype(np.int64),
            orgs=orgs,
            org_codes=org_codes,
            created=created,
            network=network_metadata(frame, cfg),
            date=day_of(frame["timestamp"]),
        )
