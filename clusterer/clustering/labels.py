"""Cluster labels: int64 per row, −1 for noise, clusters numbered 0.. by their first row."""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..accel import fastops


def n_labels(labels: NDArray[np.int64]) -> int:
    """How many clusters ``labels`` numbers (its largest label + 1; 0 when all are noise)."""
    return int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0


def by_first_row(labels: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``labels`` renumbered 0.. in the order of each cluster's first row (−1 stays −1), and the old label of
    each new one (int64 (k,)). The same grouping of the same rows always gets the same numbers."""
    labels = np.asarray(labels, dtype=np.int64)
    member = labels >= 0
    if not member.any():
        return np.full(len(labels), -1, np.int64), np.zeros(0, np.int64)
    ids, first = fastops.unique_first(labels[member])
    order = ids[np.argsort(np.flatnonzero(member)[first], kind="stable")]
    remap = np.full(int(ids.max()) + 1, -1, np.int64)
    remap[order] = np.arange(len(order))
    return np.where(member, remap[np.maximum(labels, 0)], -1), order


def member_shingles(
    labels: NDArray[np.int64], row_of: NDArray[np.int64], hashes: NDArray[np.uint64], k: int
) -> tuple[NDArray[np.int32], NDArray[np.uint64], NDArray[np.uint32], NDArray[np.int64]]:
    """How many members of each cluster hold each shingle: per distinct (cluster, shingle) pair of the
    members' entries (``hashes``, one per entry, ``row_of`` its row; each row's shingles distinct) its
    cluster, shingle and count, and int64 (k,) each cluster's size. A polars group-by, so only the distinct
    pairs are counted (not a sparse matrix of every entry)."""
    lab = labels[row_of]
    member = lab >= 0
    pairs = pl.DataFrame({"c": lab[member].astype(np.int32), "h": hashes[member]}).group_by("c", "h").len()
    del lab, member
    size = np.bincount(labels[labels >= 0], minlength=k)
    return pairs["c"].to_numpy(), pairs["h"].to_numpy(), pairs["len"].to_numpy(), size
