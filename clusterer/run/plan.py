"""``clusterer doctor --plan N``: predicted peak memory and time of a run, from N and k.

The model adds up the arrays each stage holds, per row, with the sizes the code allocates (see the
comments below), on top of the interpreter with its libraries loaded. Quantities that depend on the
traffic rather than on N are parameters with typical defaults: average prompt length, the share of
prompts with a distinct embedded text, word 3-gram shingles per prompt (about one per word), and the
template (MinHash-LSH) candidate pairs per prompt, which the day's template structure decides. The
peak is the largest stage total; RSS is a high-water mark, so freed memory that the allocator keeps
counts too, which the per-stage transient terms stand for.

Times are per-stage seconds per row measured on the reference machine (2 CPU cores, no GPU) and scale
linearly except the kNN search (exact: quadratic in distinct vectors; HNSW: n log n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.table import Table

from ..config import GraphConfig

MIB = 1024 * 1024
BASE_MB = 580.0  # python + numpy + polars + torch + faiss + hdbscan + sentence-transformers imported
MODEL_MB = {"default": 250.0, "static": 60.0, "hashing": 0.0}  # model weights and runtime once loaded
FAISS_MB = 100.0  # search buffers
NUMBA_MB = 120.0  # JIT-compiled overlap / core-distance code
CHUNK_BYTES = 16 * MIB  # skeleton text chunk (``build_skeletons``)
CHARS_PER_WORD = 5.8
PAIRS_PER_ROW = 30.0  # candidate pairs per prompt, kNN + template (measured: 20.5 public 100k, 40.4 own 1M)
DIMS = {"default": 384, "static": 256, "hashing": 384}
EMBED_PER_SEC_CPU = {"default": 80.0, "static": 20_000.0, "hashing": 3_000.0}  # 2 cores, prompts / s
# bytes the code holds, per row / word / pair (sizes of the arrays allocated; the transient factors were
# read off the stage high-water marks of a 1M-prompt run and checked against a 100k one, see README)
TEXT_B_PER_CHAR, TEXT_B_PER_ROW = 2.4, 60.0  # input frame + normalised text
TOKEN_FRAME_B_PER_WORD = 128.0  # polars token frame of one chunk (transient)
SKELETON_B_PER_WORD = 22.0  # skeleton hashes, payload tokens, scaffold view
SIG_B_PER_ROW = 4 * 128 + 8
EDGE_B_PER_PAIR = 20.0  # i, j int64 + combined sim float32
CANDIDATES_B_PER_PAIR = 42.0  # per-band codes, per-part pair codes, sorted copy, (i, j) split (transient)
CLUSTER_B_PER_PAIR = 38.0  # distances, MST weights, pair codes, CSR graph (transient)
OUTPUT_B_PER_ROW = 600.0
# seconds per row of the non-embedding stages on the reference machine (2 cores; the blind 1M-prompt day,
# static vectors, 0.2.14: 6 min 11 s in all, knn 54 s; overlap re-read at 0.2.15, 24-26 s once each distinct
# vector pair's cosine is computed once)
SECONDS_PER_ROW = {
    "ingest+normalise": 20e-6,
    "skeleton": 103e-6,
    "signatures": 3e-6,
    "candidates": 16e-6,
    "overlap": 25e-6,
    "cluster": 99e-6,
    "templates": 5e-6,
    "campaigns+write": 32e-6,
}


@dataclass
class Plan:
    n: int
    k: int
    model: str
    dim: int
    avg_chars: int
    distinct: float
    index: str
    stages: list[tuple[str, float, float]] = field(default_factory=list)  # name, MiB, seconds

    @property
    def peak_mb(self) -> float:
        return max((mb for _, mb, _ in self.stages), default=BASE_MB)

    @property
    def seconds(self) -> float:
        return sum(s for _, _, s in self.stages)


def predict(
    n: int,
    k: int = 15,
    model: str = "default",
    avg_chars: int = 250,
    distinct: float = 0.7,
    pairs_per_row: float = PAIRS_PER_ROW,
) -> Plan:
    """Peak RSS (MiB) and seconds per stage of a CPU run over ``n`` prompts. ``pairs_per_row`` is the
    candidate pairs per prompt at ``k`` = 15 (the default's measurements); each further neighbour adds up to
    one pair per prompt."""
    d = DIMS.get(model, 384)
    u = max(1.0, distinct * n)  # distinct vectors
    index = "flat" if u < GraphConfig(k=k).approx_min_rows else "hnsw"
    words = avg_chars / CHARS_PER_WORD
    pairs = n * (pairs_per_row + max(k - 15, 0))
    stages: list[tuple[str, float, float]] = []
    held = BASE_MB + n * (TEXT_B_PER_CHAR * avg_chars + TEXT_B_PER_ROW) / MIB
    stages.append(("ingest+normalise", held, n * SECONDS_PER_ROW["ingest+normalise"]))
    chunk_rows = min(n, CHUNK_BYTES / max(avg_chars, 1))
    token_frame = chunk_rows * words * TOKEN_FRAME_B_PER_WORD / MIB
    held += n * words * SKELETON_B_PER_WORD / MIB
    stages.append(("skeleton", held + token_frame, n * SECONDS_PER_ROW["skeleton"]))
    held += MODEL_MB.get(model, 250.0) + u * d * 6 / MIB  # distinct float32 vectors + float16 cache copy
    stages.append(("embed", held, u / EMBED_PER_SEC_CPU.get(model, 80.0)))
    knn = n * k * 12 / MIB
    if index == "flat":
        knn_secs = u * u * d * 2 / 150e9  # BLAS inner products at ~150 GFLOP/s on two cores
    else:
        knn_secs = u * math.log2(max(u, 2)) * d * 2 * 128 / 30e9
    stages.append(("knn", held + 2 * knn + FAISS_MB, knn_secs + n * 1e-6))
    held += knn + n * SIG_B_PER_ROW / MIB
    stages.append(("signatures", held, n * SECONDS_PER_ROW["signatures"]))
    stages.append(("candidates", held + pairs * CANDIDATES_B_PER_PAIR / MIB, n * SECONDS_PER_ROW["candidates"]))
    held += pairs * EDGE_B_PER_PAIR / MIB + NUMBA_MB - knn  # the kNN graph is dropped once paired
    stages.append(("overlap", held, n * SECONDS_PER_ROW["overlap"]))
    stages.append(("cluster", held + pairs * CLUSTER_B_PER_PAIR / MIB, n * SECONDS_PER_ROW["cluster"]))
    stages.append(("templates", held, n * SECONDS_PER_ROW["templates"]))
    stages.append(("campaigns+write", held + n * OUTPUT_B_PER_ROW / MIB, n * SECONDS_PER_ROW["campaigns+write"]))
    return Plan(n, k, model, d, avg_chars, distinct, index, stages)


def plan_table(p: Plan) -> Table:
    t = Table(
        title=f"plan: {p.n:,} prompts, k {p.k}, model {p.model} ({p.dim}-dim), {p.avg_chars} chars/prompt, "
        f"{p.distinct:.0%} distinct, kNN index {p.index}"
    )
    t.add_column("stage")
    t.add_column("peak RSS (MiB)", justify="right")
    t.add_column("seconds (2 CPU cores)", justify="right")
    for name, mb, secs in p.stages:
        t.add_row(name, f"{mb:,.0f}", f"{secs:,.0f}")
    t.add_row("[b]run[/b]", f"[b]{p.peak_mb:,.0f}[/b]", f"[b]{p.seconds:,.0f}[/b]")
    return t


# The Ray engine (``doctor --plan N --engine ray --workers W --gpus G``). Which stages run on the workers and
# which on the driver is what ray_engine.py does; a worker is taken as the reference machine (2 CPU cores),
# and distributed stages as scaling with workers, plus a fixed cost per stage for scheduling Ray tasks and
# datasets (seconds, measured on a local 2-CPU Ray at 20k and 100k prompts).
RAY_STAGE_OVERHEAD_S = {
    "ingest+normalise": 3.0,
    "skeleton": 20.0,
    "embed": 5.0,
    "knn": 2.0,
    "candidates": 3.0,
    "overlap": 4.0,
}
ON_WORKERS = {"ingest+normalise", "skeleton", "embed", "knn", "candidates", "overlap"}
GPU_EMBED_PER_SEC = {"default": 10_000.0, "static": 200_000.0, "hashing": 50_000.0}  # per GPU (assumed, not measured)
ACTOR_SIG_B_PER_ROW = SIG_B_PER_ROW  # each overlap actor holds every row's signature


@dataclass
class RayPlan:
    """Per stage: (name, where, driver MiB, per-worker MiB, seconds)."""

    n: int
    workers: int
    gpus: int
    local: Plan
    stages: list[tuple[str, str, float, float, float]] = field(default_factory=list)

    @property
    def driver_peak_mb(self) -> float:
        return max((d for _, _, d, _, _ in self.stages), default=BASE_MB)

    @property
    def worker_peak_mb(self) -> float:
        return max((w for _, _, _, w, _ in self.stages), default=0.0)

    @property
    def seconds(self) -> float:
        return sum(s for *_, s in self.stages)


def predict_ray(n: int, workers: int, gpus: int = 0, **kw: object) -> RayPlan:
    """The local plan's stages placed as the Ray engine places them: worker stages' time divided over
    ``workers`` (embedding over ``gpus`` when there are any), the driver's kept; the driver's memory is what it
    gathers (per-row arrays, the edge list, the clustering's transient), a worker's the largest share it holds
    at once (a text chunk's token frame, its kNN shard with every query's results, an overlap actor's copy of
    the signatures)."""
    local = predict(n, **kw)  # type: ignore[arg-type]
    per = {name: (mb, secs) for name, mb, secs in local.stages}
    u = max(1.0, local.distinct * n)
    shard = u / max(workers, 1) * local.dim * 4 / MIB + n * (local.k + 1) * 12 / MIB
    chunk_rows = min(n, CHUNK_BYTES / max(local.avg_chars, 1))
    token_frame = chunk_rows * (local.avg_chars / CHARS_PER_WORD) * TOKEN_FRAME_B_PER_WORD / MIB
    worker_mb = {
        "ingest+normalise": BASE_MB + min(n, 1 << 20) * TEXT_B_PER_CHAR * local.avg_chars / MIB,
        "skeleton": BASE_MB + token_frame,
        "embed": BASE_MB + MODEL_MB.get(local.model, 250.0),
        "knn": BASE_MB + shard + FAISS_MB,
        "candidates": BASE_MB + n * ACTOR_SIG_B_PER_ROW / MIB,
        "overlap": BASE_MB + n * ACTOR_SIG_B_PER_ROW / MIB + NUMBA_MB,
    }
    out = RayPlan(n, workers, gpus, local)
    for name, (mb, secs) in per.items():
        if name in ON_WORKERS:
            if name == "embed" and gpus > 0:
                secs = u / (GPU_EMBED_PER_SEC.get(local.model, 10_000.0) * gpus)
            else:
                secs = secs / max(workers, 1)
            out.stages.append((name, "workers", mb, worker_mb[name], secs + RAY_STAGE_OVERHEAD_S[name]))
        else:
            out.stages.append((name, "driver", mb, 0.0, secs))
    return out


def ray_plan_table(p: RayPlan) -> Table:
    t = Table(
        title=f"plan: {p.n:,} prompts on Ray, {p.workers} workers (2 CPU cores each), {p.gpus} GPUs, "
        f"model {p.local.model}, {p.local.distinct:.0%} distinct"
    )
    for col in ("stage", "runs on", "driver peak (MiB)", "worker peak (MiB)", "seconds"):
        t.add_column(col, justify="left" if col in ("stage", "runs on") else "right")
    for name, where, d, w, secs in p.stages:
        t.add_row(name, where, f"{d:,.0f}", f"{w:,.0f}" if w else "-", f"{secs:,.0f}")
    t.add_row(
        "[b]run[/b]",
        "",
        f"[b]{p.driver_peak_mb:,.0f}[/b]",
        f"[b]{p.worker_peak_mb:,.0f}[/b]",
        f"[b]{p.seconds:,.0f}[/b]",
    )
    return t
