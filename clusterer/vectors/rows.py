"""Per-row embeddings over a day's distinct vectors (:class:`RowVectors`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xxhash
from numpy.typing import NDArray

from ..accel import fastops


def distinct_rows(emb: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Distinct rows of ``emb`` (by the xxh3 of their bytes) in first-seen order, and each row's index
    among them: ``emb == distinct[index]``."""
    if len(emb) == 0:
        return emb, np.zeros(0, np.int64)
    h = xxhash.xxh3_64_intdigest
    raw = np.ascontiguousarray(emb)
    keys = np.fromiter((h(r.tobytes()) for r in raw), dtype=np.uint64, count=len(raw))
    _, first, inverse = fastops.unique_first_inverse(keys)
    order = np.argsort(first, kind="stable")  # distinct rows in first-seen order
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return raw[first[order]], rank[inverse.ravel()]


@dataclass(frozen=True, slots=True)
class RowVectors:
    """Per-row embeddings without one copy per row: row r's unit vector is ``vectors[of_row[r]]``.

    A day's rows share far fewer distinct vectors (templated prompts embed the same scaffold view), so
    this holds (distinct × d) floats plus one int64 per row instead of (rows × d).
    """

    vectors: NDArray[np.float32]
    of_row: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.of_row)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def take(self, idx: NDArray[np.int64]) -> NDArray[np.float32]:
        """float32 (len(idx), d): the vectors of rows ``idx``."""
        return self.vectors[self.of_row[idx]]
