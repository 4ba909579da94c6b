"""Embedding cache: float16 vectors on disk keyed by the xxh3 key of the normalised text, and
:func:`embed_texts`, which reads and fills it.

Vectors are cached per (model, max_tokens) under ``cache_dir/<model key>/`` as float16 shards. Every vector
goes through float16 whether it was cached or not, so a re-run that reads the cache gives exactly the same
vectors as the run that wrote it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xxhash
from numpy.typing import NDArray

from ..errors import OutputError
from ..io.artifacts import write_file_atomic
from .encoders import Encoder

_CHUNK = 2048  # prompts per cache shard; a crash loses at most one chunk of work
_PROGRESS_STEP = 256  # texts encoded per call, so progress moves within a chunk (a multiple of batch sizes)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Embeddings:
    """``emb``: float32 (n, d) unit rows aligned with the keys asked for; counts of cached / computed rows."""

    emb: NDArray[np.float32]
    model_key: str
    from_cache: int
    computed: int


class EmbeddingCache:
    """float16 vectors keyed by uint64 text key, in shards under ``root/<model key>/``.

    The cache never fails a run: a damaged shard (truncated, empty, not an npz) is a cache miss with a
    warning and is removed when the folder is writable; a folder that cannot be created or written (read-only,
    full disk) is a warning, after which the run goes on without storing."""

    def __init__(self, root: Path, model_key: str, dim: int) -> None:
        self.dir = root / model_key
        self.dim = dim
        self.writable = True
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            self._read_only(err)
        self._sweep()

    def _sweep(self, older_than_s: float = 3600.0) -> None:
        """Remove temp shards a killed run left (old enough that no live writer still owns them)."""
        now = time.time()
        with contextlib.suppress(OSError):
            for tmp in self.dir.glob(".tmp-*"):
                with contextlib.suppress(OSError):
                    if now - tmp.stat().st_mtime > older_than_s:
                        tmp.unlink()

    def _read_only(self, err: OSError) -> None:
        if self.writable:
            log.warning(
                "embedding cache %s cannot be written (%s); going on without storing vectors",
                self.dir,
                err.strerror or err,
            )
        self.writable = False

    def lookup(self, keys: NDArray[np.uint64]) -> tuple[NDArray[np.bool_], NDArray[np.float16]]:
        """Which keys are cached, and their vectors (rows of misses are zero)."""
        found = np.zeros(len(keys), dtype=bool)
        vecs = np.zeros((len(keys), self.dim), dtype=np.float16)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        try:
            shards = sorted(self.dir.glob("shard-*.npz"))
        except OSError:
            shards = []
        for shard in shards:
            try:
                with np.load(shard) as z:
                    skeys, svecs = np.asarray(z["keys"], np.uint64), np.asarray(z["emb"], np.float16)
                if svecs.ndim != 2 or len(skeys) != len(svecs):
                    raise ValueError(f"keys {skeys.shape} and vectors {svecs.shape} do not match")
            except Exception as err:  # noqa: BLE001 - any damage (BadZipFile, EOFError, ...) is only a miss
                log.warning(
                    "embedding cache shard %s is damaged (%s: %s); treating it as a miss",
                    shard,
                    type(err).__name__,
                    err,
                )
                with contextlib.suppress(OSError):
                    shard.unlink()
                continue
            if svecs.shape[1:] != (self.dim,):
                continue
            pos = np.searchsorted(sorted_keys, skeys)
            ok = pos < len(sorted_keys)
            ok[ok] = sorted_keys[pos[ok]] == skeys[ok]
            rows = order[pos[ok]]
            found[rows] = True
            vecs[rows] = svecs[ok]
        return found, vecs

    def store(self, keys: NDArray[np.uint64], vecs: NDArray[np.float16]) -> None:
        """Save one shard (atomically, umask mode); a write failure is a warning, not an error."""
        if not self.writable:
            return
        name = f"shard-{xxhash.xxh3_64_hexdigest(keys.tobytes())}.npz"

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=keys, emb=vecs)

        try:
            write_file_atomic(self.dir / name, save)
        except OutputError as err:
            self._read_only(err.__cause__ if isinstance(err.__cause__, OSError) else OSError(str(err)))


def encode_f16(encoder: Encoder, texts: list[str]) -> NDArray[np.float16]:
    """float16 (len(texts), d): the encoder's unit vectors as the cache stores them (every vector of a run goes
    through float16, cached or not, so cached and fresh runs agree)."""
    return encoder.encode(texts).astype(np.float16)


def _from_f16(vecs: NDArray[np.float16]) -> NDArray[np.float32]:
    out = vecs.astype(np.float32)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def embed_texts(
    texts: list[str],
    keys: NDArray[np.uint64],
    encoder: Encoder,
    cache_root: Path | None,
    progress: Callable[[int], None] | None = None,
    encode_all: Callable[[list[str]], NDArray[np.float16]] | None = None,
) -> Embeddings:
    """Embed distinct texts (``keys[i]`` is the key of ``texts[i]``), reading and filling the cache.

    Returns float32 (len(texts), d) unit rows. ``progress`` is called with the number of rows done. With
    ``encode_all`` (an engine's workers: :func:`encode_f16` of a list of texts, in order), the texts the cache
    lacks are encoded in one call and then stored; otherwise here, chunk by chunk.
    """
    n = len(texts)
    cache = EmbeddingCache(cache_root, encoder.key, encoder.dim) if cache_root is not None else None
    if cache is not None:
        found, vecs = cache.lookup(keys)
    else:
        found, vecs = np.zeros(n, dtype=bool), np.zeros((n, encoder.dim), dtype=np.float16)
    if progress is not None and found.any():
        progress(int(found.sum()))
    todo = np.flatnonzero(~found)
    # longest first within the run so that padding waste stays low across chunks too
    todo = todo[np.argsort([-len(texts[i]) for i in todo], kind="stable")]
    done = encode_all([texts[i] for i in todo]) if encode_all is not None and len(todo) else None
    for start in range(0, len(todo), _CHUNK):
        idx = todo[start : start + _CHUNK]
        if done is not None:
            chunk = done[start : start + _CHUNK]
            if progress is not None:
                progress(len(idx))
        else:
            chunk = np.empty((len(idx), encoder.dim), np.float16)
            step = max(_PROGRESS_STEP, 4 * int(getattr(encoder, "batch_size", 0)))
            for s in range(0, len(idx), step):  # progress within a chunk: small days are one chunk
                sub = idx[s : s + step]
                chunk[s : s + len(sub)] = encode_f16(encoder, [texts[i] for i in sub])
                if progress is not None:
                    progress(len(sub))
        vecs[idx] = chunk
        if cache is not None:
            cache.store(keys[idx], chunk)
    return Embeddings(emb=_from_f16(vecs), model_key=encoder.key, from_cache=int(found.sum()), computed=int(len(todo)))
