"""The executor seam the stage libraries see: map a function over row chunks, count keys.

Library code (``text.skeleton``) takes an :class:`Executor` and runs its per-chunk passes and its document
frequency group-by through it. :class:`Serial` runs them in this process; the engines in :mod:`clusterer.run`
implement the same two calls in this process or on a Ray cluster, with identical results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import polars as pl
from numpy.typing import NDArray

from . import fastops


class Executor(Protocol):
    def map_chunks(
        self, fn: Callable[..., Any], texts: pl.Series, chunks: Sequence[tuple[int, int]], *args: Any
    ) -> list[Any]:
        """``[fn(texts.slice(start, length), start, *args) for start, length in chunks]``, in chunk order."""
        ...

    def count(self, keys: NDArray[np.uint64]) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
        """Sorted distinct keys and how often each occurs (``np.unique(keys, return_counts=True)``)."""
        ...


class Serial:
    """Every pass in this process, chunk after chunk."""

    def map_chunks(
        self, fn: Callable[..., Any], texts: pl.Series, chunks: Sequence[tuple[int, int]], *args: Any
    ) -> list[Any]:
        return [fn(texts.slice(start, length), start, *args) for start, length in chunks]

    def count(self, keys: NDArray[np.uint64]) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
        return fastops.unique_counts(keys)


SERIAL = Serial()
