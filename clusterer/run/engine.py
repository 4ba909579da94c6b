"""Engines: where a stage's heavy primitives run. :class:`LocalEngine` runs them in this process; the Ray
engine (:mod:`clusterer.run.ray_engine`) overrides the same methods to run them on a Ray cluster. An engine
decides where a primitive runs, never what it computes: every override returns what the local one returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..accel.backend import Backend
from ..accel.parallel import Serial
from ..config import EmbedConfig, EngineConfig, GraphConfig, NormaliseConfig
from ..graph.edges import Pairs
from ..graph.knn import Knn, knn_graph
from ..graph.lsh import Signatures, lsh_pairs, pair_overlap
from ..text.normalise import Normalised, normalise
from ..vectors.cache import Embeddings, embed_texts
from ..vectors.encoders import Encoder


class LocalEngine(Serial):
    """Every primitive in this process (``device`` picks CPU or GPU code where a stage has both)."""

    name = "local"

    def __init__(self, cfg: EngineConfig, device: Backend) -> None:
        self.cfg = cfg
        self.device = device

    def map_files(self, fn: Callable[..., Any], items: Sequence[Any]) -> list[Any]:
        """``[fn(*item) for item in items]`` (reading the input files)."""
        return [fn(*item) for item in items]

    def normalise(self, texts: pl.Series, cfg: NormaliseConfig) -> Normalised:
        return normalise(texts, cfg)

    def embed(
        self,
        texts: list[str],
        keys: NDArray[np.uint64],
        encoder: Encoder,
        cfg: EmbedConfig,
        progress: Callable[[int], None] | None = None,
    ) -> Embeddings:
        """Vectors of distinct ``texts`` (``keys[i]`` the key of ``texts[i]``) through the embedding cache; the
        texts it lacks are encoded by :meth:`encoder_map` when the engine has one, else here."""
        encode_all = self.encoder_map(cfg)
        return embed_texts(texts, keys, encoder, cfg.resolved_cache_dir(), progress=progress, encode_all=encode_all)

    def encoder_map(self, cfg: EmbedConfig) -> Callable[[list[str]], NDArray[np.float16]] | None:
        """``encode(texts) -> float16 (len, d)`` on the engine's workers; None: in this process."""
        return None

    def knn(self, vectors: NDArray[np.float32], cfg: GraphConfig) -> Knn:
        """kNN among the distinct vectors (see :func:`clusterer.graph.knn.knn_graph`)."""
        return knn_graph(vectors, cfg, self.device)

    def lsh(self, sigs: Signatures, cfg: GraphConfig) -> Pairs:
        return lsh_pairs(sigs.sig, sigs.sizes, cfg)

    def overlap(self, sigs: Signatures, pairs: Pairs) -> NDArray[np.float32]:
        """float32 (m,): estimated skeleton Jaccard of each pair."""
        return pair_overlap(sigs, pairs.i, pairs.j, self.device)[:, 0]

    def describe(self) -> dict[str, Any]:
        """The engine as the manifest records it."""
        return {"kind": self.name}

    def close(self) -> None:
        """Release what the engine holds (nothing, locally)."""
