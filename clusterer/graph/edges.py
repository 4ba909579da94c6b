"""Candidate pairs and scored edges: the prompt graph the clustering reads.

Pairs come from the embedding kNN (:mod:`clusterer.graph.knn`) and from MinHash-LSH buckets
(:mod:`clusterer.graph.lsh`); each is scored with ``sim = w · skeleton Jaccard + (1 − w) · cosine`` and read
by the clustering as the distance :func:`distance` (``sqrt(2 − 2·sim)``, the Euclidean distance of unit vectors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..accel import fastops
from ..config import GraphConfig
from ..vectors.rows import RowVectors
from .knn import Knn


def distance(sim: NDArray[np.floating]) -> NDArray[np.float64]:
    """``sqrt(2 − 2·sim)`` in float64: the Euclidean distance between unit vectors of cosine ``sim`` (0 to 2)."""
    return np.sqrt(np.clip(2.0 - 2.0 * np.asarray(sim, dtype=np.float64), 0.0, 4.0))


@dataclass(frozen=True, slots=True)
class Pairs:
    """Candidate pairs, ``i < j``, unique, sorted: int64 (m,) each."""

    i: NDArray[np.int64]
    j: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Edges:
    """Scored candidate pairs: ``sim`` float32 (m,) the combined similarity the clustering uses (its two
    terms are not kept: at a million prompts they are two arrays of the day's largest size that nothing
    after the scoring reads)."""

    i: NDArray[np.int64]
    j: NDArray[np.int64]
    sim: NDArray[np.float32]


def unique_pairs(i: NDArray[np.int64], j: NDArray[np.int64], n: int) -> Pairs:
    """Drop self-pairs, orient each pair as (min, max), de-duplicate and sort."""
    return pairs_of_codes(fastops.unique(_codes(i, j, n)), n)


def pairs_of_codes(code: NDArray[np.int64], n: int) -> Pairs:
    """Pairs from sorted unique codes ``i·n + j``."""
    return Pairs(i=code // n, j=code % n)


def knn_pairs(knn: Knn) -> Pairs:
    """The kNN graph's edges as pairs."""
    n, k = knn.idx.shape
    return unique_pairs(np.repeat(np.arange(n, dtype=np.int64), k), knn.idx.ravel(), n)


def _codes(i: NDArray[np.int64], j: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    keep = (i != j) & (i >= 0) & (j >= 0)
    a, b = i[keep], j[keep]
    return np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b)


def merge_pairs(*parts: Pairs, n: int) -> Pairs:
    """Union of candidate sets (each part is turned into pair codes on its own: one array of the union's
    size is built, not the concatenated (i, j) copies)."""
    return pairs_of_codes(fastops.unique(np.concatenate([_codes(p.i, p.j, n) for p in parts])), n)


PAIR_BLOCK = 1 << 22  # pairs whose vector pairs are de-duplicated together by pair_cosine


def _dots(vec: NDArray[np.float32], a: NDArray[np.int64], b: NDArray[np.int64], chunk: int) -> NDArray[np.float32]:
    out = np.empty(len(a), np.float32)
    for s in range(0, len(a), chunk):
        out[s : s + chunk] = np.einsum("ij,ij->i", vec[a[s : s + chunk]], vec[b[s : s + chunk]])
    return out


def pair_cosine(
    emb: NDArray[np.float32] | RowVectors, i: NDArray[np.int64], j: NDArray[np.int64], chunk: int = 65536
) -> NDArray[np.float32]:
    """Cosine of rows i and j of unit-row ``emb`` for every pair, in chunks so memory stays O(chunk · d).

    With :class:`RowVectors` each distinct pair of vectors is computed once (per ``PAIR_BLOCK`` pairs): a
    template's prompts share their scaffold view's vector, so many pairs are the same two vectors (on a
    generated 100k day 31% of the pairs join a vector to itself and 35% are distinct). The same values as
    one product per pair: each is the same row-wise product of the same two rows."""
    if not isinstance(emb, RowVectors):
        return _dots(emb, i, j, chunk)
    out = np.empty(len(i), np.float32)
    n_vec = len(emb.vectors)
    for s in range(0, len(i), PAIR_BLOCK):
        vi, vj = emb.of_row[i[s : s + PAIR_BLOCK]], emb.of_row[j[s : s + PAIR_BLOCK]]
        uniq, inv = fastops.unique_inverse(np.minimum(vi, vj) * n_vec + np.maximum(vi, vj))
        out[s : s + PAIR_BLOCK] = _dots(emb.vectors, uniq // n_vec, uniq % n_vec, chunk)[inv]
    return out


def score_edges(
    pairs: Pairs, emb: NDArray[np.float32] | RowVectors, tmpl: NDArray[np.float32], cfg: GraphConfig
) -> Edges:
    """Combined similarity ``sim = w · tmpl + (1 − w) · cos`` with ``w = cfg.template_weight``.

    ``tmpl`` is the estimated skeleton Jaccard of each pair (0 when either prompt has no skeleton), ``cos``
    the cosine of the two embeddings. Template evidence pulls prompts of one scaffold together whatever
    their payload; the semantic term links paraphrased or re-worded variants the shingles miss.
    """
    w = np.float32(cfg.template_weight)
    sim = pair_cosine(emb, pairs.i, pairs.j)
    sim *= np.float32(1.0) - w
    sim += w * tmpl.astype(np.float32, copy=False)
    return Edges(i=pairs.i, j=pairs.j, sim=sim)


def knn_edges(knn: Knn) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """The kNN graph as undirected edges (i, j, d) with d = :func:`distance` of the cosine."""
    valid = knn.idx >= 0
    i = np.repeat(np.arange(knn.idx.shape[0]), knn.idx.shape[1])[valid.ravel()]
    j = knn.idx[valid]
    return i.astype(np.int64), j.astype(np.int64), distance(knn.sim[valid])
