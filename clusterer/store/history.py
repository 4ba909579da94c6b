"""History: earlier days' vectors in a compressed on-disk FAISS index, to tell new clusters from old.

Layout of a history folder::

    history.json          model key, dimension, index factory string, the days added (one entry each)
    trained.faiss         the empty trained IVF-PQ index (coarse centroids + PQ codebooks)
    days/<seq>.faiss      one IVF-PQ shard per day added (codes + ids), opened memory-mapped
    days/<seq>.parquet    per stored vector: copies that day, cluster_id, campaign_id (null when unflagged)

Each ``history add`` stores one day's *distinct* vectors (the run's ``vectors.npy``) with their copy
counts, in a shard of its own: adding a day never rewrites the earlier ones, and a search opens every
shard with ``IO_FLAG_MMAP`` so resident memory is the coarse centroids plus the pages a query touches.
A vector's FAISS id is ``seq << 32 | row in that day's vectors``.

Bytes per stored vector: ``pq_m`` code bytes + 8 id bytes in the shard, plus a few bytes of parquet
(compressed). With the default 384-dim MiniLM and ``pq_m`` 48: 56 B + ~4 B, i.e. about 60 GB of disk
for a billion vectors, with RAM for the coarse quantizer only (nlist × d × 4 B: 100 MB at nlist 65,536).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..config import HistoryConfig
from ..errors import ConfigError, InputError
from ..io.artifacts import ASSIGNMENTS, MANIFEST, VECTOR_OF_ROW, VECTORS, write_bytes_atomic, write_file_atomic

META = "history.json"
_ID_SHIFT = 32


def _load_run(run_dir: Path) -> tuple[NDArray[np.float16], NDArray[np.int64], pl.DataFrame, dict[str, Any]]:
    run_dir = Path(run_dir)
    need = [run_dir / VECTORS, run_dir / VECTOR_OF_ROW, run_dir / ASSIGNMENTS, run_dir / MANIFEST]
    missing = [p.name for p in need if not p.is_file()]
    if missing:
        raise InputError(f"{run_dir} is not a finished run with saved vectors (missing: {', '.join(missing)})")
    vecs = np.load(run_dir / VECTORS, mmap_mode="r")
    of_row = np.load(run_dir / VECTOR_OF_ROW)
    assign = pl.read_parquet(run_dir / ASSIGNMENTS, columns=["cluster_id", "campaign_id"])
    manifest = json.loads((run_dir / MANIFEST).read_text())
    if len(of_row) != assign.height:
        raise InputError(f"{run_dir}: {VECTOR_OF_ROW} has {len(of_row)} rows, assignments {assign.height}")
    return vecs, of_row, assign, manifest


def _vector_table(of_row: NDArray[np.int64], assign: pl.DataFrame, n_vec: int) -> pl.DataFrame:
    """Per distinct vector: copies, most common cluster_id and campaign_id among its rows."""
    df = pl.DataFrame({"v": of_row, "cluster_id": assign["cluster_id"], "campaign_id": assign["campaign_id"]})
    df = df.filter(pl.col("v") >= 0)
    agg = df.group_by("v").agg(
        pl.len().alias("copies"),
        pl.col("cluster_id").mode().first(),
        pl.col("campaign_id").drop_nulls().mode().first(),
    )
    full = pl.DataFrame({"v": np.arange(n_vec, dtype=np.int64)})
    return full.join(agg, on="v", how="left").sort("v").with_columns(pl.col("copies").fill_null(0).cast(pl.UInt32))


_PQ_TRAIN_MIN = 256  # a PQ codebook has 256 centroids: its training needs at least as many vectors


def read_history(index_dir: Path) -> dict[str, Any]:
    """``history.json`` of a history folder, after checking that the files it lists are there whole: the
    trained index, and each day's shard (its recorded size) and table (parquet's closing magic).

    Raises:
        InputError: not a folder, an unreadable ``history.json``, a missing or damaged file (named).
    """
    index_dir = Path(index_dir)
    if index_dir.exists() and not index_dir.is_dir():
        raise InputError(f"history {index_dir} is a file, not a history folder")
    try:
        meta = json.loads((index_dir / META).read_text(encoding="utf-8"))
        days = [(int(d["seq"]), int(d["shard_bytes"])) for d in meta["days"]]
        missing = [k for k in ("model_key", "dim") if k not in meta]
        if missing:
            raise KeyError(", ".join(missing))
    except FileNotFoundError as err:
        raise InputError(f"history {index_dir}: no {META}; create it with `clusterer history add`") from err
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"history {index_dir}: {META} is damaged ({type(err).__name__}: {err})") from err
    problems = [] if (index_dir / "trained.faiss").is_file() else ["trained.faiss is missing"]
    for seq, size in days:
        shard, table = index_dir / "days" / f"{seq:06d}.faiss", index_dir / "days" / f"{seq:06d}.parquet"
        if not shard.is_file() or shard.stat().st_size != size:
            problems.append(f"{shard.name} is {'missing' if not shard.is_file() else 'not the size recorded'}")
        if not table.is_file() or table.stat().st_size < 8 or _tail(table) != b"PAR1":
            problems.append(f"{table.name} is {'missing' if not table.is_file() else 'truncated'}")
    if problems:
        raise InputError(f"history {index_dir} is damaged: {'; '.join(problems[:5])}; rebuild it with `history add`")
    return meta


def _tail(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(-4, 2)
        return fh.read()


def _refuse_again(
    meta: dict[str, Any], manifest: dict[str, Any], inputs: list[str], run_dir: Path, index_dir: Path
) -> None:
    """Refuse a run already in the history, or another run of the same input files for a day in it (a re-run
    of the day: its prompts would count twice in every later search). Days of the same date from other
    inputs (parts of one day run apart) are added."""
    if any(day["run_started_at"] == manifest["started_at"] for day in meta["days"]):
        raise InputError(f"run {run_dir} (started {manifest['started_at']}) is already in {index_dir}")
    same = [e for e in meta["days"] if inputs and e.get("day") == manifest["day"] and e.get("inputs") == inputs]
    if same:
        raise InputError(
            f"run {run_dir} read the same input files as run {same[0]['run_dir']} of {manifest['day']} "
            f"(started {same[0]['run_started_at']}), already in {index_dir}: its prompts would count twice; "
            "build the history again without that run, or add this one to another history"
        )


def add_day(run_dir: Path, index_dir: Path, cfg: HistoryConfig | None = None) -> dict[str, Any]:
    """Append a finished run's distinct vectors to the history at ``index_dir`` (created when absent).

    Returns the history.json entry of the day added.

    Raises:
        InputError: the run has no saved vectors, or the day was added before.
        ConfigError: the run's embedding model differs from the history's.
    """
    import faiss

    cfg = cfg or HistoryConfig()
    index_dir = Path(index_dir)
    vecs, of_row, assign, manifest = _load_run(run_dir)
    model_key = manifest["embedding"]["model_key"]
    n_vec, d = vecs.shape
    meta_path = index_dir / META
    # the input files' content fingerprints (xxh3-64, as the manifest records them), to refuse a re-run
    listed = [i for i in manifest.get("inputs") or [] if isinstance(i, dict)]
    inputs = sorted(str(i["xxh3_64"]) for i in listed) if listed and all(i.get("xxh3_64") for i in listed) else []
    if not manifest.get("day") or n_vec == 0:
        raise InputError(f"run {run_dir} has no dated vectors to add (no clustered rows); nothing was written")
    if index_dir.exists() and not index_dir.is_dir():
        raise InputError(f"history {index_dir} is a file, not a history folder")
    if not meta_path.is_file() and n_vec < _PQ_TRAIN_MIN:
        raise InputError(
            f"run {run_dir} has {n_vec} distinct vectors; the first day of a history trains its compressed index "
            f"and needs at least {_PQ_TRAIN_MIN}: start the history with a bigger day"
        )
    if meta_path.is_file():
        meta = read_history(index_dir)
        if meta["model_key"] != model_key or meta["dim"] != d:
            raise ConfigError(
                f"history {index_dir} holds {meta['model_key']} ({meta['dim']}-dim) vectors; "
                f"run {run_dir} used {model_key} ({d}-dim)"
            )
        _refuse_again(meta, manifest, inputs, run_dir, index_dir)
        try:
            trained = faiss.read_index(str(index_dir / "trained.faiss"))
        except RuntimeError as err:
            raise InputError(f"history {index_dir}: trained.faiss cannot be read ({str(err).splitlines()[0]})") from err
    else:
        (index_dir / "days").mkdir(parents=True, exist_ok=True)
        m = cfg.pq_m or max(1, d // 8)
        while d % m:
            m -= 1
        nlist = int(min(cfg.nlist, max(1, n_vec // 39)))  # faiss wants >= 39 training points per list
        factory = f"IVF{nlist},PQ{m}"
        trained = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(n_vec, min(cfg.train_rows, n_vec), replace=False))
        trained.cp.seed = 1234
        trained.train(np.ascontiguousarray(vecs[sample], dtype=np.float32))
        write_file_atomic(index_dir / "trained.faiss", lambda tmp: faiss.write_index(trained, str(tmp)))
        meta = {"model_key": model_key, "dim": d, "factory": factory, "days": []}
    seq = len(meta["days"])
    shard = faiss.clone_index(trained)
    ids_base = np.int64(seq) << _ID_SHIFT
    for s in range(0, n_vec, 262_144):
        block = np.ascontiguousarray(vecs[s : s + 262_144], dtype=np.float32)
        shard.add_with_ids(block, ids_base + np.arange(s, s + len(block), dtype=np.int64))
    name = f"{seq:06d}"
    write_file_atomic(index_dir / "days" / f"{name}.faiss", lambda tmp: faiss.write_index(shard, str(tmp)))
    table = _vector_table(of_row, assign, n_vec)
    write_file_atomic(index_dir / "days" / f"{name}.parquet", lambda tmp: table.write_parquet(tmp))
    entry = {
        "seq": seq,
        "day": manifest["day"],
        "run_started_at": manifest["started_at"],
        "run_dir": str(Path(run_dir).resolve().name),
        "vectors": int(n_vec),
        "rows": int((of_row >= 0).sum()),
        "shard_bytes": (index_dir / "days" / f"{name}.faiss").stat().st_size,
        "inputs": inputs,
    }
    meta["days"].append(entry)
    write_bytes_atomic(meta_path, json.dumps(meta, indent=2).encode())
    return entry


def history_stats(index_dir: Path) -> dict[str, Any]:
    meta = json.loads((Path(index_dir) / META).read_text())
    n = sum(d["vectors"] for d in meta["days"])
    disk = sum(p.stat().st_size for p in (Path(index_dir) / "days").iterdir())
    return {"days": len(meta["days"]), "vectors": n, "disk_bytes": disk, "bytes_per_vector": disk / max(n, 1)}


def annotate_clusters(
    index_dir: Path,
    model_key: str,
    vecs: NDArray[np.float32],
    of_row: NDArray[np.int64],
    labels: NDArray[np.int64],
    n_clusters: int,
    cfg: HistoryConfig | None = None,
) -> pl.DataFrame:
    """Per cluster of today: its near-duplicates in the history (cosine ≥ ``min_cos``).

    Up to ``queries_per_cluster`` distinct member vectors of each cluster are searched in every day's
    shard. Columns: cluster_id, history_first_seen (date of the earliest day with a match),
    history_days (days with a match), history_near_duplicates (stored prompts, copies counted, matching
    any query), history_campaign_id (the campaign ID most matched prompts carried, when any).

    ``of_row[r]``: row of ``vecs`` for clustered row r (labels aligned with of_row).
    """
    import faiss

    cfg = cfg or HistoryConfig()
    index_dir = Path(index_dir)
    meta = read_history(index_dir)
    if meta["model_key"] != model_key or meta["dim"] != vecs.shape[1]:
        raise ConfigError(
            f"history {index_dir} holds {meta['model_key']} ({meta['dim']}-dim) vectors; "
            f"this run uses {model_key} ({vecs.shape[1]}-dim)"
        )
    # query vectors: distinct member vectors per cluster, the first few of each
    m = labels >= 0
    qv = pl.DataFrame({"c": labels[m], "v": of_row[m]}).unique(maintain_order=True)
    qv = qv.filter(pl.int_range(0, pl.len()).over("c") < cfg.queries_per_cluster)
    q_cluster = qv["c"].to_numpy()
    queries = np.ascontiguousarray(vecs[qv["v"].to_numpy()], dtype=np.float32)
    hits: list[pl.DataFrame] = []
    for day in meta["days"]:
        name = f"{day['seq']:06d}"
        shard = faiss.read_index(str(index_dir / "days" / f"{name}.faiss"), faiss.IO_FLAG_MMAP)
        faiss.extract_index_ivf(shard).nprobe = cfg.nprobe
        sim, ids = shard.search(queries, cfg.k)
        ok = (ids >= 0) & (sim >= cfg.min_cos)
        if not ok.any():
            continue
        qi = np.nonzero(ok)[0]
        local = (ids[ok] & ((1 << _ID_SHIFT) - 1)).astype(np.int64)
        table = pl.read_parquet(index_dir / "days" / f"{name}.parquet")
        found = pl.DataFrame({"cluster_id": q_cluster[qi], "v": local}).unique()
        found = found.join(table.select("v", "copies", "campaign_id"), on="v", how="left")
        hits.append(found.with_columns(pl.lit(dt.date.fromisoformat(day["day"])).alias("day")))
    base = pl.DataFrame({"cluster_id": np.arange(n_clusters, dtype=np.int64)})
    if not hits:
        return base.with_columns(
            pl.lit(None, pl.Date).alias("history_first_seen"),
            pl.lit(0, pl.UInt32).alias("history_days"),
            pl.lit(0, pl.UInt64).alias("history_near_duplicates"),
            pl.lit(None, pl.String).alias("history_campaign_id"),
        )
    allh = pl.concat(hits).unique(subset=["cluster_id", "day", "v"])
    per = allh.group_by("cluster_id").agg(
        pl.col("day").min().alias("history_first_seen"),
        pl.col("day").n_unique().cast(pl.UInt32).alias("history_days"),
        pl.col("copies").sum().cast(pl.UInt64).alias("history_near_duplicates"),
        pl.col("campaign_id").drop_nulls().mode().first().alias("history_campaign_id"),
    )
    return base.join(per, on="cluster_id", how="left").with_columns(
        pl.col("history_days").fill_null(0), pl.col("history_near_duplicates").fill_null(0)
    )
