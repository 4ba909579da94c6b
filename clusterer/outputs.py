"""Outputs: the parquet tables and manifest of a run, each written atomically (temp file, then rename).

Schemas (also in the README):
  assignments.parquet  one row per input row, in input order
  clusters.parquet     one row per cluster
  accounts.parquet     one row per account
  manifest.json        version, config, inputs, row counts, per-stage seconds and memory, device
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from . import fastops
from .campaigns import Decisions
from .cluster import centroids
from .config import SCORE_TERMS
from .embed import RowVectors
from .errors import OutputError
from .templates import Templates

ASSIGNMENTS = "assignments.parquet"
CLUSTERS = "clusters.parquet"
ACCOUNTS = "accounts.parquet"
OPERATORS = "operators.parquet"
MANIFEST = "manifest.json"

STATUS_CLUSTERED = "clustered"
STATUS_NOISE = "noise"
STATUS_EMPTY = "empty_text"  # null, blank, or nothing left after normalisation: not embedded
EXEMPLAR_CHARS = 300

ASSIGNMENT_SCHEMA = {
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
    "single_prompt_account_share": pl.Float64,
    "slot_variety": pl.Float64,
    "hour_profile_divergence": pl.Float64,
    "interarrival_cv": pl.Float64,
    "burst_share": pl.Float64,
    "shift_share": pl.Float64,
    "top_org_share": pl.Float64,
    "new_account_share": pl.Float64,
    "burst_excess": pl.Float64,
    # the campaign score's evidence: each term's value in [-1, 1] and its contribution to the logit
    **{f"term_{t}": pl.Float64 for t in SCORE_TERMS},
    **{f"contrib_{t}": pl.Float64 for t in ("bias", *SCORE_TERMS)},
    "campaign_logit": pl.Float64,
}
ACCOUNT_SCHEMA = {
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
    "operator_group": pl.Int64,
    "accounts": pl.UInt32,
    "flagged_prompts": pl.UInt32,
    "campaigns": pl.List(pl.String),
    "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"),
}


def check_writable(out: Path) -> None:
    """Create ``out`` if needed and prove a file can be written there, before any heavy work.

    Raises:
        OutputError: the directory cannot be created or written.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"--out {out} is not writable: {err.strerror or err}") from err


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(df: pl.DataFrame, path: Path) -> None:
    _atomic(path, lambda tmp: df.write_parquet(tmp, compression="zstd"))


def write_npy(arr: NDArray[Any], path: Path) -> None:
    def _w(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.save would append '.npy' to a temp name
            np.save(fh, arr)

    _atomic(path, _w)


def write_json(obj: dict[str, Any], path: Path) -> None:
    def _w(tmp: Path) -> None:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")

    _atomic(path, _w)


def assignments_frame(
    frame: pl.DataFrame,
    labels: NDArray[np.int64],
    status: NDArray[np.object_],
    membership: NDArray[np.float32],
    coverage: NDArray[np.float32],
    truncated: NDArray[np.bool_],
    dec: Decisions,
    extra_columns: tuple[str, ...],
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
        schema=ASSIGNMENT_SCHEMA,
    )
    extras = [c for c in extra_columns if c not in ASSIGNMENT_SCHEMA]
    return core.hstack(frame.select(extras)) if extras else core


def clusters_frame(
    frame: pl.DataFrame,
    labels: NDArray[np.int64],
    emb_rows: NDArray[np.float32] | RowVectors,
    rows: NDArray[np.int64],
    tmpl: Templates,
    dec: Decisions,
) -> pl.DataFrame:
    """Per-cluster table. ``emb_rows[i]`` is the embedding of input row ``rows[i]``.

    The exemplar is the member closest to the cluster's mean direction; cohesion is the mean cosine of
    members to that direction.
    """
    n_clusters = len(tmpl.text)
    if n_clusters == 0:
        return pl.DataFrame(schema=CLUSTER_SCHEMA)
    lab = labels[rows]
    member = lab >= 0
    pos_m = np.flatnonzero(member)
    lab_m, rows_m = lab[member], rows[member]
    centroid = centroids(lab, emb_rows, n_clusters)
    take = emb_rows.take if isinstance(emb_rows, RowVectors) else emb_rows.__getitem__
    cos = np.empty(len(pos_m), np.float64)
    for s in range(0, len(pos_m), 65536):
        sl = slice(s, s + 65536)
        cos[sl] = np.einsum("ij,ij->i", take(pos_m[sl]), centroid[lab_m[sl]])
    cohesion = np.bincount(lab_m, weights=cos, minlength=n_clusters) / np.maximum(
        np.bincount(lab_m, minlength=n_clusters), 1
    )
    # exemplar: highest cosine per cluster, ties to the earliest row
    order = fastops.lexsort(rows_m, -cos, lab_m)
    first = np.searchsorted(lab_m[order], np.arange(n_clusters))
    exemplar_rows = rows_m[order][first]
    ex = frame[exemplar_rows.tolist()]
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
            "cohesion": cohesion.astype(np.float64),
            "rigidity": tmpl.rigidity,
            "template_coverage": tmpl.coverage,
            "template_fit": tmpl.fit,
            "exemplar_prompt_id": ex["prompt_id"],
            "exemplar_text": ex["text"].str.slice(0, EXEMPLAR_CHARS),
            "template": pl.Series(tmpl.text, dtype=pl.String),
        }
    )
    out = per.join(meta, on="cluster_id", how="left")
    dcols = [c for c in dec.clusters.columns if c in CLUSTER_SCHEMA and c not in out.columns]
    out = out.join(dec.clusters.select("cluster_id", *dcols), on="cluster_id", how="left")
    out = out.with_columns([pl.lit(None).alias(c) for c in CLUSTER_SCHEMA if c not in out.columns])
    return out.select([pl.col(c).cast(t) for c, t in CLUSTER_SCHEMA.items()]).sort(
        ["campaign_score", "n_accounts", "cluster_id"], descending=[True, True, False], nulls_last=True
    )


def operators_frame(dec: Decisions) -> pl.DataFrame:
    """One row per operator group (accounts that share flagged template families)."""
    if dec.operators.height == 0:
        return pl.DataFrame(schema=OPERATOR_SCHEMA)
    return dec.operators.select([pl.col(c).cast(t) for c, t in OPERATOR_SCHEMA.items()])


def accounts_frame(frame: pl.DataFrame, labels: NDArray[np.int64], dec: Decisions) -> pl.DataFrame:
    """Per-account table: volume, clustered volume, the clusters touched, flags and operator group."""
    df = pl.DataFrame(
        {
            "account_id": frame["account_id"],
            "timestamp": frame["timestamp"],
            "cluster_id": pl.Series(labels, dtype=pl.Int64),
        }
    )
    out = (
        df.group_by("account_id")
        .agg(
            pl.len().cast(pl.UInt32).alias("prompts"),
            (pl.col("cluster_id") >= 0).sum().cast(pl.UInt32).alias("clustered_prompts"),
            pl.col("cluster_id").filter(pl.col("cluster_id") >= 0).unique().sort().alias("cluster_ids"),
            pl.col("timestamp").min().alias("first_seen"),
            pl.col("timestamp").max().alias("last_seen"),
        )
        .with_columns(pl.col("cluster_ids").list.len().cast(pl.UInt32).alias("n_clusters"))
        .join(dec.accounts, on="account_id", how="left")
        .with_columns(pl.col("flagged").fill_null(False), pl.col("operator_group").fill_null(-1))
    )
    return out.select([pl.col(c).cast(t) for c, t in ACCOUNT_SCHEMA.items()]).sort("account_id")
