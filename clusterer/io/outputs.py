"""Outputs: the parquet tables of a run, their schemas, and how they are written.

Schemas (also in the README); every table starts with ``run_id`` and ``day``:
  assignments.parquet  one row per input row, in input order
  clusters.parquet     one row per cluster
  accounts.parquet     one row per account
  operators.parquet    one row per operator group
  manifest.json        version, config, inputs, row counts, per-stage seconds and memory, device, and
                       per output file its rows, bytes and SHA-256 (written by ``artifacts.replace_set``)

Columns listed in ``NOT_NULL`` are declared non-null in the parquet schema (``required`` fields), so a
consumer's schema check catches a contract change. The whole set is replaced as a unit
(:func:`clusterer.artifacts.replace_set`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..config import SCORE_TERMS
from ..errors import OutputError
from . import artifacts
from .artifacts import ACCOUNTS, ASSIGNMENTS, CLUSTERS, KNOWN_FILES, OPERATORS

if TYPE_CHECKING:  # the table builders' inputs; writing a set needs none of these heavy modules
    from ..campaigns.decisions import Decisions
    from ..clustering.summary import Summary
    from ..text.templates import Templates

STATUS_CLUSTERED = "clustered"
STATUS_NOISE = "noise"
STATUS_EMPTY = "empty_text"  # null, blank, or nothing left after normalisation: not embedded
STATUS_NO_TIMESTAMP = "no_timestamp"  # null timestamp with ingest.null_timestamps = "skip": not clustered
STATUSES = (STATUS_CLUSTERED, STATUS_NOISE, STATUS_EMPTY, STATUS_NO_TIMESTAMP)
RUN_COLUMNS = {"run_id": pl.String, "day": pl.Date}  # first two columns of every table
EXEMPLAR_CHARS = 300

ASSIGNMENT_SCHEMA = {
    **RUN_COLUMNS,
    "prompt_id": pl.String,
    "account_id": pl.String,
    "timestamp": pl.Datetime("us", "UTC"),
    "cluster_id": pl.Int64,
    "status": pl.String,
    "membership": pl.Float32,
    "template_coverage": pl.Float32,
    "truncated": pl.Boolean,
    "campaign_id": pl.String,
    "campaign_score": pl.Float32,
    "flagged": pl.Boolean,
}
CLUSTER_SCHEMA = {
    **RUN_COLUMNS,
    "cluster_id": pl.Int64,
    "size": pl.UInt32,
    "n_accounts": pl.UInt32,
    "top_account_share": pl.Float64,
    "cohesion": pl.Float64,
    "rigidity": pl.Float32,
    "template_coverage": pl.Float32,
    "template_fit": pl.Float32,
    "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"),
    "exemplar_prompt_id": pl.String,
    "exemplar_text": pl.String,
    "template": pl.String,
    "campaign_id": pl.String,
    "campaign_score": pl.Float64,
    "flagged": pl.Boolean,
    "tags": pl.List(pl.String),
    "account_focus": pl.Float64,
    "effective_accounts": pl.Float64,
    "earlier_accounts": pl.UInt32,  # a stream window: the senders of the open families it holds (campaigns.open)
    "exemplars": pl.UInt32,  # a stream window: its rows that are carried exemplars, context not output
    "single_prompt_account_share": pl.Float64,
    "slot_variety": pl.Float64,
    "hour_profile_divergence": pl.Float64,
    "interarrival_cv": pl.Float64,
    "burst_share": pl.Float64,
    "shift_share": pl.Float64,
    "top_org_share": pl.Float64,
    "new_account_share": pl.Float64,
    "burst_excess": pl.Float64,
    # network and payment features (campaigns.network; null without the columns they need)
    "hosting_share": pl.Float64,
    "hosting_excess": pl.Float64,
    "crowded_share": pl.Float64,
    "rotating_share": pl.Float64,
    "shared_payment_share": pl.Float64,
    # the campaign score's evidence: each term's value in [-1, 1] and its contribution to the logit
    **{f"term_{t}": pl.Float64 for t in SCORE_TERMS},
    **{f"contrib_{t}": pl.Float64 for t in ("bias", *SCORE_TERMS)},
    "campaign_logit": pl.Float64,
}
ACCOUNT_SCHEMA = {
    **RUN_COLUMNS,
    "account_id": pl.String,
    "prompts": pl.UInt32,
    "clustered_prompts": pl.UInt32,
    "n_clusters": pl.UInt32,
    "cluster_ids": pl.List(pl.Int64),
    "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"),
    "flagged": pl.Boolean,
    "flagged_share": pl.Float64,
    "campaigns": pl.List(pl.String),
    "operator_group": pl.Int64,
}
OPERATOR_SCHEMA = {
    **RUN_COLUMNS,
    "operator_group": pl.Int64,
    "accounts": pl.UInt32,
    "flagged_prompts": pl.UInt32,
    "campaigns": pl.List(pl.String),
    "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"),
}


# Columns never null (declared ``required`` in the parquet schema); list columns' elements are never null either.
NOT_NULL: dict[str, frozenset[str]] = {
    ASSIGNMENTS: frozenset(
        {
            "run_id",
            "day",
            "prompt_id",
            "account_id",
            "cluster_id",
            "status",
            "membership",
            "template_coverage",
            "truncated",
            "campaign_score",
            "flagged",
        }
    ),
    CLUSTERS: frozenset(
        {
            "run_id",
            "day",
            "cluster_id",
            "size",
            "n_accounts",
            "top_account_share",
            "cohesion",
            "rigidity",
            "template_coverage",
            "first_seen",
            "last_seen",
            "exemplar_prompt_id",
            "exemplar_text",
            "template",
            "campaign_score",
            "flagged",
            "tags",
        }
    ),
    ACCOUNTS: frozenset(
        {
            "run_id",
            "day",
            "account_id",
            "prompts",
            "clustered_prompts",
            "n_clusters",
            "cluster_ids",
            "flagged",
            "flagged_share",
            "campaigns",
            "operator_group",
        }
    ),
    OPERATORS: frozenset(set(OPERATOR_SCHEMA)),
}


def check_writable(out: Path) -> None:
    """Prove ``out`` can take an output set, before any heavy work: its parent can be created and written
    (the set is staged beside ``out`` and swapped in) and ``out`` holds nothing clusterer did not write.

    Raises:
        OutputError: the directory cannot be created or written, or holds foreign files.
    """
    out = Path(out).absolute()
    artifacts.check_target(out, set(KNOWN_FILES), "--out")
    probe = out.parent / f".{out.name}{artifacts.TAG}probe-{secrets.token_hex(4)}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as err:
        raise OutputError(f"--out {out} is not writable: {err.strerror or err}") from err


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {c: t for c, t in schema.items() if c not in RUN_COLUMNS}


def with_run_columns(df: pl.DataFrame, run_id: str, day: Any) -> pl.DataFrame:
    """``df`` with ``run_id`` (str) and ``day`` (date) as its first two columns."""
    return df.select(pl.lit(run_id, pl.String).alias("run_id"), pl.lit(day, pl.Date).alias("day"), pl.all())


def _arrow_schema(df: pl.DataFrame, not_null: frozenset[str]) -> Any:
    import pyarrow as pa

    table = df.to_arrow(compat_level=pl.CompatLevel.oldest())
    fields = []
    for f in table.schema:
        typ = f.type
        required = f.name in not_null
        if required and (pa.types.is_large_list(typ) or pa.types.is_list(typ)):
            typ = pa.large_list(pa.field("item", typ.value_type, nullable=False))
        fields.append(pa.field(f.name, typ, nullable=not required))
    return table, pa.schema(fields)


def write_table(df: pl.DataFrame, path: Path, not_null: frozenset[str] = frozenset()) -> int:
    """Write ``df`` as zstd parquet with ``not_null`` columns declared required; returns its rows.

    Raises:
        ValueError: a column declared non-null holds nulls (a bug: the tables are built not to).
    """
    import pyarrow.parquet as pq

    table, schema = _arrow_schema(df.rechunk(), not_null)  # one chunk: the same table gives the same bytes
    pq.write_table(table.cast(schema).combine_chunks(), path, compression="zstd")
    return df.height


def write_parquet(df: pl.DataFrame, path: Path, not_null: frozenset[str] = frozenset()) -> None:
    """Write one parquet file atomically (temp file + rename, umask mode).

    Raises:
        OutputError: the file system refused the write.
    """
    artifacts.write_file_atomic(Path(path), lambda tmp: write_table(df, tmp, not_null))


def write_npy(arr: NDArray[Any], path: Path) -> int:
    """Write an array as .npy; returns its length."""
    with open(path, "wb") as fh:  # a file object: np.save would append '.npy' to other names
        np.save(fh, arr)
    return len(arr)


def assignments_frame(
    frame: pl.DataFrame,
    labels: NDArray[np.int64],
    status: NDArray[np.object_],
    membership: NDArray[np.float32],
    coverage: NDArray[np.float32],
    truncated: NDArray[np.bool_],
    dec: Decisions,
    extra_columns: tuple[str, ...],
    *,
    run_id: str,
    day: Any,
) -> pl.DataFrame:
    """Per-prompt table: every input row exactly once, in input order, extras carried through."""
    core = pl.DataFrame(
        {
            "prompt_id": frame["prompt_id"],
            "account_id": frame["account_id"],
            "timestamp": frame["timestamp"],
            "cluster_id": pl.Series(labels, dtype=pl.Int64),
            "status": pl.Series(status.astype(str), dtype=pl.String),
            "membership": pl.Series(membership, dtype=pl.Float32),
            "template_coverage": pl.Series(coverage, dtype=pl.Float32),
            "truncated": pl.Series(truncated, dtype=pl.Boolean),
            "campaign_id": pl.Series(dec.prompt_campaign, dtype=pl.String),
            "campaign_score": pl.Series(dec.prompt_score, dtype=pl.Float32),
            "flagged": pl.Series(dec.prompt_flagged, dtype=pl.Boolean),
        },
        schema=_body(ASSIGNMENT_SCHEMA),
    )
    core = with_run_columns(core, run_id, day)
    extras = [c for c in extra_columns if c not in ASSIGNMENT_SCHEMA]
    return core.hstack(frame.select(extras)) if extras else core


def clusters_frame(
    frame: pl.DataFrame,
    labels: NDArray[np.int64],
    tmpl: Templates,
    summary: Summary,
    dec: Decisions,
    *,
    run_id: str,
    day: Any,
) -> pl.DataFrame:
    """Per-cluster table; ``labels``: int64 (n,) cluster per input row; cohesion and the exemplar come from
    ``summary`` (the member closest to the cluster's mean direction; the mean cosine of members to it)."""
    n_clusters = len(tmpl.text)
    if n_clusters == 0:
        return pl.DataFrame(schema=CLUSTER_SCHEMA)
    body = _body(CLUSTER_SCHEMA)
    ex = frame[summary.exemplar.tolist()]
    per = (
        pl.DataFrame({"cluster_id": labels, "account_id": frame["account_id"], "timestamp": frame["timestamp"]})
        .filter(pl.col("cluster_id") >= 0)
        .group_by("cluster_id")
        .agg(
            pl.len().cast(pl.UInt32).alias("size"),
            pl.col("account_id").n_unique().cast(pl.UInt32).alias("n_accounts"),
            (pl.col("account_id").value_counts(sort=True).first().struct.field("count") / pl.len()).alias(
                "top_account_share"
            ),
            pl.col("timestamp").min().alias("first_seen"),
            pl.col("timestamp").max().alias("last_seen"),
        )
        .sort("cluster_id")
    )
    meta = pl.DataFrame(
        {
            "cluster_id": np.arange(n_clusters, dtype=np.int64),
            "cohesion": summary.cohesion.astype(np.float64),
            "rigidity": tmpl.rigidity,
            "template_coverage": tmpl.coverage,
            "template_fit": tmpl.fit,
            "exemplar_prompt_id": ex["prompt_id"],
            "exemplar_text": ex["text"].str.slice(0, EXEMPLAR_CHARS),
            "template": pl.Series(tmpl.text, dtype=pl.String),
        }
    )
    out = per.join(meta, on="cluster_id", how="left")
    dcols = [c for c in dec.clusters.columns if c in body and c not in out.columns]
    out = out.join(dec.clusters.select("cluster_id", *dcols), on="cluster_id", how="left")
    out = out.with_columns([pl.lit(None).alias(c) for c in body if c not in out.columns])
    # a cluster the campaign stage did not score is not flagged, and carries no tags
    out = out.with_columns(
        pl.col("campaign_score").fill_null(0.0), pl.col("flagged").fill_null(False), pl.col("tags").fill_null([])
    )
    out = out.select([pl.col(c).cast(t) for c, t in body.items()]).sort(
        ["campaign_score", "n_accounts", "cluster_id"], descending=[True, True, False], nulls_last=True
    )
    return with_run_columns(out, run_id, day)


def operators_frame(dec: Decisions, *, run_id: str, day: Any) -> pl.DataFrame:
    """One row per operator group (accounts that share flagged template families)."""
    return operators_table(dec.operators, run_id=run_id, day=day)


def operators_table(operators: pl.DataFrame, *, run_id: str | None, day: Any) -> pl.DataFrame:
    """``operators`` (:func:`~clusterer.campaigns.decisions.operator_table`) as ``operators.parquet`` holds it."""
    if operators.height == 0:
        return pl.DataFrame(schema=OPERATOR_SCHEMA)
    out = operators.select([pl.col(c).cast(t) for c, t in _body(OPERATOR_SCHEMA).items()])
    return with_run_columns(out, run_id, day)


def accounts_frame(
    frame: pl.DataFrame, labels: NDArray[np.int64], dec: Decisions, *, run_id: str, day: Any
) -> pl.DataFrame:
    """Per-account table: volume, clustered volume, the clusters touched, flags and operator group."""
    df = pl.DataFrame(
        {
            "account_id": frame["account_id"],
            "timestamp": frame["timestamp"],
            "cluster_id": pl.Series(labels, dtype=pl.Int64),
        }
    )
    return accounts_table(df, dec.accounts, run_id=run_id, day=day)


def accounts_table(rows: pl.DataFrame, decided: pl.DataFrame, *, run_id: str | None, day: Any) -> pl.DataFrame:
    """``accounts.parquet`` from ``rows`` (a prompt per row: ``account_id``, ``timestamp``, ``cluster_id``, −1
    none) and ``decided`` (per account: ``flagged``, ``flagged_share``, ``campaigns``, ``operator_group``;
    an account it leaves out has none of them)."""
    out = (
        rows.group_by("account_id")
        .agg(
            pl.len().cast(pl.UInt32).alias("prompts"),
            (pl.col("cluster_id") >= 0).sum().cast(pl.UInt32).alias("clustered_prompts"),
            pl.col("cluster_id").filter(pl.col("cluster_id") >= 0).unique().sort().alias("cluster_ids"),
            pl.col("timestamp").min().alias("first_seen"),
            pl.col("timestamp").max().alias("last_seen"),
        )
        .with_columns(pl.col("cluster_ids").list.len().cast(pl.UInt32).alias("n_clusters"))
        .join(decided, on="account_id", how="left")
        .with_columns(
            pl.col("flagged").fill_null(False),
            pl.col("operator_group").fill_null(-1),
            pl.col("flagged_share").fill_null(0.0),
            pl.col("campaigns").fill_null([]),
        )
    )
    out = out.select([pl.col(c).cast(t) for c, t in _body(ACCOUNT_SCHEMA).items()]).sort("account_id")
    return with_run_columns(out, run_id, day)
