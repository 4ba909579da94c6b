"""Cluster labels: int64 per row, −1 for noise, clusters numbered 0.. by their first row."""

from __future__ import annotations

import numpy as np
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
