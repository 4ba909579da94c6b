"""Per-cluster summaries over the rows' vectors, computed once: centroids, cohesion and exemplars.

The registry stores the centroids, ``clusters.parquet`` the cohesion and the exemplar; both read them from one
:class:`Summary`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

from ..accel import fastops
from ..vectors.rows import RowVectors


def centroids(labels: NDArray[np.int64], emb: NDArray[np.float32] | RowVectors, k: int) -> NDArray[np.float32]:
    """Unit mean direction of each cluster's rows of ``emb``: float32 (k, d); noise rows (-1) ignored."""
    m = np.flatnonzero(labels >= 0)
    dim = emb.dim if isinstance(emb, RowVectors) else emb.shape[1]
    if k == 0 or len(m) == 0:
        return np.zeros((k, dim), np.float32)
    if isinstance(emb, RowVectors):
        cols, mat = emb.of_row[m], emb.vectors
    else:
        cols, mat = m, emb
    member = csr_matrix((np.ones(len(m), np.float32), (labels[m], cols)), shape=(k, len(mat)))
    cent = np.asarray(member @ mat, dtype=np.float64)
    cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
    return cent.astype(np.float32)


@dataclass(frozen=True, slots=True)
class Summary:
    """Per cluster 0..k-1: ``centroid`` float32 (k, d) unit mean direction of its rows; ``cohesion`` float64
    (k,) mean cosine of its members to it; ``exemplar`` int64 (k,) the member (input row) closest to it, ties
    to the earliest row."""

    centroid: NDArray[np.float32]
    cohesion: NDArray[np.float64]
    exemplar: NDArray[np.int64]


def summarise(
    labels: NDArray[np.int64],
    emb: RowVectors,
    rows: NDArray[np.int64],
    k: int,
    context: NDArray[np.bool_] | None = None,
) -> Summary:
    """:class:`Summary` of clusters 0..k-1; ``labels[i]`` and ``emb`` row i belong to input row ``rows[i]``.
    ``context`` (a stream window): bool per embedded row, a carried exemplar — clustered with the window, not
    output; a cluster's exemplar is one of its own rows when it has any, so that it joins the window's
    assignments (its centroid and cohesion read every row)."""
    centroid = centroids(labels, emb, k)
    pos_m = np.flatnonzero(labels >= 0)
    lab_m, rows_m = labels[pos_m], rows[pos_m]
    cos = np.empty(len(pos_m), np.float64)
    for s in range(0, len(pos_m), 65536):
        sl = slice(s, s + 65536)
        cos[sl] = np.einsum("ij,ij->i", emb.take(pos_m[sl]), centroid[lab_m[sl]])
    cohesion = np.bincount(lab_m, weights=cos, minlength=k) / np.maximum(np.bincount(lab_m, minlength=k), 1)
    # exemplar: highest cosine per cluster (own rows before carried ones), ties to the earliest row
    carried = context[pos_m] if context is not None else np.zeros(len(pos_m), bool)
    order = fastops.lexsort(rows_m, -cos, carried, lab_m)
    first = np.searchsorted(lab_m[order], np.arange(k))
    exemplar = rows_m[order][first] if k else np.zeros(0, np.int64)
    return Summary(centroid=centroid, cohesion=cohesion, exemplar=exemplar.astype(np.int64))
