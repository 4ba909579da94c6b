"""The Ray engine: the local engine's primitives on a Ray cluster (``clusterer run --engine ray``).

What runs where (README "Running on Ray"):

- reading the input files: Ray Data, one file per batch (polars inside), Arrow IPC back to the driver, which
  runs the day-wide checks (duplicate IDs, nulls) as the local engine does;
- normalisation: Ray Data ``map_batches`` over Arrow batches of the text column (polars inside);
- skeleton passes: one Ray task per row chunk; shingle and word-core document frequencies: a Ray Data
  group-by count over the row-shingle hashes;
- embedding of the distinct texts the cache lacks: Ray Data ``map_batches`` on actors holding the encoder,
  one GPU each (``num_gpus=1``) when the cluster has GPUs and the run a CUDA device, else fractional CPUs
  (``engine.cpus_per_actor``) so that read tasks are never starved;
- kNN among the distinct vectors: the vectors in the object store, one exact inner-product search per shard
  (a Ray task each), the shards' top-k merged on the driver;
- MinHash-LSH: bands grouped on workers (one Ray task per group of bands: bucket keys, the per-band order and
  the linking of bucket-mates), codes unioned on the driver;
- pairwise skeleton overlap: Ray Data ``map_batches`` over the candidate pairs, on actors holding the
  signatures;
- HDBSCAN, refinement, family grouping, templates and campaign decisions: on the driver, over the gathered
  O(N·k) edge list and per-row arrays.

Every primitive returns what :class:`~clusterer.run.engine.LocalEngine` returns for the same input (the kNN
merge keeps the exact search's order: similarity, then row; ``tests/run/test_ray.py`` checks whole days).
"""

from __future__ import annotations

import io
import logging
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..accel import fastops
from ..accel.backend import Backend
from ..config import EmbedConfig, EngineConfig, GraphConfig, NormaliseConfig
from ..errors import ClustererError, ConfigError
from ..graph.edges import Pairs, pairs_of_codes
from ..graph.knn import Knn, knn_graph
from ..graph.lsh import Signatures, link_band, lsh_rows
from ..text.normalise import Normalised, normalise_frame, normalised
from ..vectors.cache import encode_f16
from ..vectors.encoders import load_encoder
from .engine import LocalEngine

log = logging.getLogger("clusterer")
MAX_KNN_SHARDS = 16


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ConfigError("--engine ray needs the ray package: pip install 'clusterer[ray]'") from err
    return ray


def quiet_ray_logs() -> None:
    """Ray Data logs each dataset's plan at INFO on its own handlers; the run's log says what runs where."""
    for name in list(logging.root.manager.loggerDict):
        if name == "ray" or name.startswith("ray."):
            logging.getLogger(name).setLevel(logging.WARNING)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse a Ray address nothing answers at (``ray.init`` would retry for minutes before failing).

    Raises:
        ConfigError: the host does not accept a TCP connection on the address's port.
    """
    if not address or address == "auto":
        return
    import socket

    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r}: expected HOST:PORT (GCS, 6379) or ray://HOST:PORT (client, 10001)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise ConfigError(
            f"--address {address}: no Ray cluster answers there ({err.strerror or err}); start one with `ray start "
            "--head` / `ray up`, or leave --address out for a local Ray"
        ) from err


def local_runtime_env() -> dict[str, Any]:
    """A local Ray's workers import this very ``clusterer`` (a source checkout or an installed one)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {"env_vars": {"PYTHONPATH": root + (os.pathsep + path if path else "")}}


class RayEngine(LocalEngine):
    """The stages' primitives on a Ray cluster: ``cfg.address`` ('' starts a local Ray, or joins the one this
    process already started)."""

    name = "ray"

    def __init__(self, cfg: EngineConfig, device: Backend) -> None:
        super().__init__(cfg, device)
        ray = _ray()
        self._owned = False
        if not ray.is_initialized():
            check_reachable(cfg.address)
            try:
                ray.init(
                    address=cfg.address or None,
                    runtime_env=None if cfg.address else local_runtime_env(),
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    configure_logging=False,
                )
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise ConfigError(
                    f"--engine ray: cannot reach a Ray cluster at {cfg.address or 'local'}: {err}"
                ) from err
            self._owned = True
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # batches come back in row order
        ctx.enable_progress_bars = False
        ctx.default_hash_shuffle_parallelism = max(1, int(ray.cluster_resources().get("CPU", 1)) * 2)
        quiet_ray_logs()
        res = ray.cluster_resources()
        self.cpus = float(res.get("CPU", 1.0))
        self.gpus = int(res.get("GPU", 0))
        self.nodes = len([n for n in ray.nodes() if n.get("Alive")])

    # ---- reading and normalising -------------------------------------------------------------------
    def map_files(self, fn: Callable[..., Any], items: Sequence[Any]) -> list[Any]:
        """Read the input files with Ray Data, one file per batch (see :func:`clusterer.io.ingest.read_file`):
        each comes back as Arrow IPC; an input error a worker found is raised here as it was raised there."""
        if not items:
            return []
        ray = _ray()
        ref = ray.put(list(items))

        def read(batch: dict[str, NDArray[Any]]) -> dict[str, Any]:
            todo = ray.get(ref)
            out = []
            for k in batch["id"].tolist():
                try:
                    df, info = fn(*todo[k])
                except ClustererError as err:  # sent back whole: Ray's wrappers would keep only its text
                    out.append(pickle.dumps(err))
                    continue
                sink = io.BytesIO()
                if df is not None:
                    df.write_ipc(sink)
                out.append(pickle.dumps((sink.getvalue() if df is not None else None, info)))
            return {"id": batch["id"], "blob": np.array(out, dtype=object)}

        ds = ray.data.range(len(items), override_num_blocks=len(items)).map_batches(read, batch_size=1, num_cpus=0.5)
        out = []
        for row in sorted(ds.take_all(), key=lambda r: r["id"]):
            got = pickle.loads(row["blob"])
            if isinstance(got, ClustererError):
                raise got
            raw, info = got
            out.append((pl.read_ipc(io.BytesIO(raw)) if raw is not None else None, info))
        return out

    def normalise(self, texts: pl.Series, cfg: NormaliseConfig) -> Normalised:
        """Ray Data ``map_batches`` of :func:`~clusterer.text.normalise.normalise_frame` over Arrow batches."""
        ray = _ray()
        import pyarrow as pa

        n = len(texts)
        if n == 0:
            return normalised(normalise_frame(texts, cfg))
        table = pa.table({"t": texts.cast(pl.String).to_arrow()})
        blocks = max(1, min(int(self.cpus) * 2, -(-n // self.cfg.batch_rows)))

        def norm(batch: Any) -> Any:
            out = normalise_frame(pl.from_arrow(batch["t"]).alias("t"), cfg)
            return out.to_arrow()

        ds = _blocks(table, blocks).map_batches(
            norm, batch_format="pyarrow", batch_size=self.cfg.batch_rows, num_cpus=0.5
        )
        parts = [pl.from_arrow(t) for t in ray.get(ds.to_arrow_refs())]
        return normalised(pl.concat([p for p in parts if p.height], how="vertical"))

    # ---- skeletons ---------------------------------------------------------------------------------
    def map_chunks(
        self, fn: Callable[..., Any], texts: pl.Series, chunks: Sequence[tuple[int, int]], *args: Any
    ) -> list[Any]:
        """One Ray task per row chunk; large arguments go to the object store once."""
        ray = _ray()
        task = ray.remote(num_cpus=0.5)(_call_chunk)
        refs = [ray.put(a) for a in args]
        futures = [task.remote(fn, texts.slice(s, n).to_arrow(), s, *refs) for s, n in chunks]
        return ray.get(futures)

    def count(self, keys: NDArray[np.uint64]) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
        """Distinct keys and their counts as a Ray Data group-by (a distributed count of document frequency)."""
        ray = _ray()
        if len(keys) == 0:
            return fastops.unique_counts(keys)
        import pyarrow as pa

        blocks = max(1, min(int(self.cpus) * 2, -(-len(keys) // (1 << 20))))
        ds = _blocks(pa.table({"h": pa.array(keys, pa.uint64())}), blocks)
        counted = ds.groupby("h", num_partitions=blocks).count()
        table = pl.concat([pl.from_arrow(t) for t in ray.get(counted.to_arrow_refs())]).sort("h")
        return table["h"].to_numpy().astype(np.uint64), table[table.columns[1]].to_numpy().astype(np.int64)

    # ---- embedding ---------------------------------------------------------------------------------
    def _actor_options(self) -> dict[str, Any]:
        if self.device is Backend.GPU and self.gpus > 0:
            return {"num_gpus": 1, "actors": self.gpus}
        return {"num_cpus": self.cfg.cpus_per_actor, "actors": self.actors()}

    def actors(self) -> int:
        """CPU actors per actor pool: one per node, or one per two CPUs where nodes have more (at most 16),
        at fractional CPUs each, spread over the nodes."""
        return max(1, min(16, max(self.nodes, int(self.cpus // 2))))

    def _pool(self, opts: dict[str, Any]) -> dict[str, Any]:
        ray = _ray()
        out = {k: v for k, v in opts.items() if k != "actors"}
        # Ray Data creates pool actors with its SPREAD default (one per node before two on one)
        return {**out, "compute": ray.data.ActorPoolStrategy(size=opts["actors"])}

    def encoder_map(self, cfg: EmbedConfig) -> Callable[[list[str]], NDArray[np.float16]]:
        """``encode(texts) -> float16 (len, d)`` on the engine's embedding actors (Ray Data ``map_batches``); the
        cache is read and written on the driver (``LocalEngine.embed``)."""
        ray = _ray()
        import pyarrow as pa

        device = self.device if self.gpus > 0 else Backend.CPU
        batch = max(cfg.batch_size, 256)

        def encode(texts: list[str]) -> NDArray[np.float16]:
            table = pa.table({"i": np.arange(len(texts), dtype=np.int64), "text": pa.array(texts, pa.string())})
            blocks = max(1, min(int(self.cpus) * 4, -(-len(texts) // batch)))
            ds = _blocks(table, blocks).map_batches(
                _Embedder,
                fn_constructor_args=(cfg, device),
                batch_size=batch,
                batch_format="numpy",
                **self._pool(self._actor_options()),
            )
            out = [pl.from_arrow(t) for t in ray.get(ds.to_arrow_refs())]
            got = pl.concat([o for o in out if o.height]).sort("i")
            return np.stack(got["emb"].to_numpy()).astype(np.float16) if got.height else np.zeros((0, 0), np.float16)

        return encode

    # ---- kNN, LSH, overlap -------------------------------------------------------------------------
    def shards(self, n: int) -> int:
        want = self.cfg.knn_shards or min(MAX_KNN_SHARDS, max(1, int(self.cpus)))
        return max(1, min(want, n // 2 if n >= 4 else 1))

    def knn(self, vectors: NDArray[np.float32], cfg: GraphConfig) -> Knn:
        """Exact inner-product kNN, sharded: each shard's top (k + 1) for every vector on a worker, merged here
        by similarity then row (the exact search's order); self and padding as in ``knn_graph``."""
        ray = _ray()
        n = len(vectors)
        if n <= 1:
            return knn_graph(vectors, cfg, Backend.CPU)
        kk = min(cfg.k + 1, n)
        bounds = np.linspace(0, n, self.shards(n) + 1).astype(np.int64)
        ref = ray.put(np.ascontiguousarray(vectors, dtype=np.float32))
        task = ray.remote(num_cpus=0.5)(_search_shard)
        parts = ray.get([task.remote(ref, int(a), int(b), kk) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
        sim = np.concatenate([p[0] for p in parts], axis=1)
        idx = np.concatenate([p[1] for p in parts], axis=1)
        return merge_topk(sim, idx, kk, cfg.k)

    def lsh(self, sigs: Signatures, cfg: GraphConfig) -> Pairs:
        """LSH bands grouped on workers (one task per group of bands), pair codes unioned here."""
        ray = _ray()
        n, p = sigs.sig.shape
        rows = lsh_rows(sigs.sizes)
        if len(rows) < 2 or cfg.lsh_bands == 0:
            return Pairs(i=np.zeros(0, np.int64), j=np.zeros(0, np.int64))
        r = p // cfg.lsh_bands
        groups = np.array_split(np.arange(cfg.lsh_bands), max(1, min(cfg.lsh_bands, int(self.cpus) * 2)))
        sig_ref, rows_ref = ray.put(sigs.sig), ray.put(rows)
        task = ray.remote(num_cpus=0.5)(_link_bands)
        codes = ray.get([task.remote(sig_ref, rows_ref, g.tolist(), r, cfg.lsh_links, n) for g in groups if len(g)])
        return pairs_of_codes(fastops.unique(np.concatenate(codes)), n)

    def overlap(self, sigs: Signatures, pairs: Pairs) -> NDArray[np.float32]:
        """Ray Data ``map_batches`` of the skeleton overlap over the pairs, on actors holding the signatures."""
        ray = _ray()
        import pyarrow as pa

        m = len(pairs.i)
        if m == 0:
            return np.zeros(0, np.float32)
        sig_ref = ray.put((sigs.sig, sigs.sizes))
        table = pa.table({"i": pairs.i, "j": pairs.j})
        rows = max(self.cfg.batch_rows, 1 << 16)
        ds = _blocks(table, max(1, min(int(self.cpus) * 2, -(-m // rows)))).map_batches(
            _Overlap,
            fn_constructor_args=(sig_ref, "num_gpus" in self._actor_options()),
            batch_size=rows,
            batch_format="numpy",
            **self._pool(self._actor_options()),
        )
        out = [pl.from_arrow(t) for t in ray.get(ds.to_arrow_refs())]
        return pl.concat([o for o in out if o.height])["jac"].to_numpy().astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "address": self.cfg.address or "local",
            "nodes": self.nodes,
            "cpus": self.cpus,
            "gpus": self.gpus,
            "embed_actors": self._actor_options(),
        }

    def close(self) -> None:
        """Shut down the Ray runtime this engine started (not one the caller started)."""
        if self._owned:
            _ray().shutdown()
            self._owned = False


def merge_topk(sim: NDArray[np.float32], idx: NDArray[np.int64], kk: int, k: int) -> Knn:
    """Per row the ``kk`` best of several shards' candidates (``sim`` / ``idx`` (n, c), -1 = none), by
    similarity then row, then without the row itself and padded to ``k`` as ``knn_graph`` returns them."""
    from ..graph.knn import canonical_topk, pad_knn

    return pad_knn(*canonical_topk(idx, sim, kk), kk, k)


def _blocks(table: Any, n: int) -> Any:
    """A Ray dataset of ``table`` in ``n`` blocks of consecutive rows, split here: a ``repartition`` would need
    whole CPUs for its tasks, which a node whose CPUs the actors hold does not have (the job then hangs)."""
    ray = _ray()
    step = -(-table.num_rows // max(n, 1))
    return ray.data.from_arrow([table.slice(s, step) for s in range(0, table.num_rows, step)] or [table])


def _call_chunk(fn: Callable[..., Any], texts: Any, start: int, *args: Any) -> Any:
    return fn(pl.Series(pl.from_arrow(texts)), start, *args)


def _search_shard(
    vectors: NDArray[np.float32], a: int, b: int, kk: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Top ``kk`` of rows a..b for every vector (exact inner product), as global rows; ties by row, as the
    unsharded search orders them."""
    import faiss

    from ..graph.knn import TIE_SLACK, canonical_topk

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors[a:b])
    sim, idx = index.search(vectors, min(kk + TIE_SLACK, b - a))
    idx = np.where(idx >= 0, idx + a, -1).astype(np.int64)
    idx, sim = canonical_topk(idx, sim, kk)
    return sim, idx


def _link_bands(
    sig: NDArray[np.uint32], rows: NDArray[np.int64], bands: list[int], r: int, links: int, n: int
) -> NDArray[np.int64]:
    return fastops.unique(np.concatenate([link_band(sig, rows, b, r, links, n) for b in bands]))


class _Embedder:
    """A Ray Data actor holding one encoder."""

    def __init__(self, cfg: EmbedConfig, device: Backend) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.encoder = load_encoder(cfg, device)

    def __call__(self, batch: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        return {"i": batch["i"], "emb": encode_f16(self.encoder, [str(t) for t in batch["text"]])}


class _Overlap:
    """A Ray Data actor holding the day's MinHash signatures."""

    def __init__(self, ref: Any, gpu: bool) -> None:
        import ray

        self.sig, self.sizes = ray.get(ref) if isinstance(ref, ray.ObjectRef) else ref
        self.gpu = gpu

    def __call__(self, batch: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        from ..graph.lsh import Signatures, pair_overlap

        # the CUDA kernel on a GPU worker (its Numba twin, same numbers, elsewhere or without a working CuPy)
        i, j = batch["i"].astype(np.int64), batch["j"].astype(np.int64)
        backend = Backend.GPU if self.gpu else Backend.CPU
        return {"jac": pair_overlap(Signatures(sig=self.sig, sizes=self.sizes), i, j, backend)[:, 0]}
