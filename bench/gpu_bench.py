"""GPU throughput checks for a device session; one JSON line per case (also fine on CPU as a self-check).

    python bench/gpu_bench.py [--n-embed 100000] [--tokens 128] [--pairs 10000000] [--knn 1000000]

- embed: a MiniLM-L6-shaped BERT (6 layers, 384 hidden, 12 heads) with random weights, fp16 on CUDA, on
  full 128-token batches: the throughput of the packaged all-MiniLM-L6-v2, which is too large to carry to
  a device machine. Reports prompts/s.
- knn: exact inner-product top-k by torch brute force (the GPU path used without faiss-gpu) over random
  unit vectors; reports seconds, checked against NumPy on a sample of rows.
- whole_run: the pipeline end to end on generated days (``--whole 1000000``; beyond 1M the generated day
  is tiled with fresh prompt and account IDs but the same texts, so its embed and kNN stages see the 1M
  day's distinct texts: a figure for the other stages only), with a random-weight MiniLM built from the
  packaged model's config and tokenizer (``--minilm-shape``), per-stage seconds from the manifest.
- overlap / minhash: the CUDA kernels via bench/bench_overlap.py's method (checked against the Numba
  reference first), with GB/s against the card's peak.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_embed(n: int, tokens: int) -> dict:
    import torch
    from transformers import BertConfig, BertModel

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = BertConfig(
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        vocab_size=30522,
        max_position_embeddings=512,
    )
    model = BertModel(cfg).eval().to(dev)
    if dev == "cuda":
        model = model.half()
    batch = 1024 if dev == "cuda" else 32
    ids = torch.randint(1000, 30000, (batch, tokens), device=dev)
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask)  # warm-up
        _sync()
        t0 = time.perf_counter()
        done = 0
        while done < n:
            out = model(input_ids=ids, attention_mask=mask).last_hidden_state
            emb = torch.nn.functional.normalize((out * mask[..., None]).sum(1), dim=1)
            done += batch
        _sync()
    secs = time.perf_counter() - t0
    return {
        "case": "embed",
        "device": dev,
        "prompts": done,
        "tokens": tokens,
        "batch": batch,
        "seconds": round(secs, 3),
        "prompts_per_s": round(done / secs, 1),
        "dim": int(emb.shape[1]),
    }


def bench_knn(n: int, k: int = 15) -> dict:
    import torch

    from clusterer.accel.backend import Backend, gpu_count
    from clusterer.config import GraphConfig
    from clusterer.graph.knn import knn_graph

    backend = Backend.GPU if gpu_count() else Backend.CPU
    x = np.random.default_rng(0).normal(size=(n, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    knn_graph(x[:2000], GraphConfig(k=k), backend)
    _sync()
    t0 = time.perf_counter()
    got = knn_graph(x, GraphConfig(k=k, index="flat"), backend)
    _sync()
    secs = time.perf_counter() - t0
    rows = np.random.default_rng(1).choice(n, 200, replace=False)
    s = x[rows] @ x.T
    s[np.arange(200), rows] = -np.inf
    want = -np.sort(-s, axis=1)[:, :k]
    err = float(np.abs(got.sim[rows] - want).max())
    return {
        "case": "knn",
        "backend": str(backend),
        "n": n,
        "k": k,
        "seconds": round(secs, 2),
        "max_abs_err_vs_numpy": err,
        "torch": torch.__version__,
    }


def random_minilm(shape_dir: Path, out: Path) -> Path:
    """A sentence-transformers folder with all-MiniLM-L6-v2's config and tokenizer (``shape_dir``: the
    packaged model's files without weights) and random weights: same speed, meaningless vectors."""
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    if (out / "model.safetensors").is_file():
        return out
    shutil.copytree(shape_dir, out, dirs_exist_ok=True)
    torch.manual_seed(0)
    BertModel(BertConfig.from_pretrained(str(shape_dir))).save_pretrained(str(out))
    return out


def day_of(n: int, work: Path) -> Path:
    """A generated day of n prompts: gen_scenario at min(n, 1M), tiled with fresh IDs beyond that."""
    import importlib.util

    import polars as pl

    path = work / f"day_{n}.parquet"
    if path.is_file():
        return path
    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("gen_scenario", root / "scripts" / "gen_scenario.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    base, _ = gen.generate(min(n, 1_000_000), 1, 7, False, None)
    base = base.drop("label", "kind", "group")
    tiles = []
    for t in range(-(-n // base.height)):
        tiles.append(
            base.with_columns(
                (pl.col("prompt_id") + f"-t{t}").alias("prompt_id"),
                (pl.col("account_id") + f"-t{t}").alias("account_id"),
            )
        )
    pl.concat(tiles).head(n).write_parquet(path)
    return path


def bench_whole(n: int, model: str, work: Path) -> dict:
    """The whole pipeline on a generated day of n prompts; per-stage seconds from its manifest."""
    from clusterer import api
    from clusterer.config import load_config

    day = day_of(n, work)
    cfg = load_config(None, quiet=True, **{"embed.model": model, "embed.cache_dir": str(work / "cache")})
    t0 = time.perf_counter()
    m = api.run([day], work / f"run_{n}", cfg)
    secs = time.perf_counter() - t0
    return {
        "case": "whole_run",
        "n": n,
        "device": m["device"]["name"],
        "seconds": round(secs, 1),
        "stages": {k: v["seconds"] for k, v in m["stages"].items()},
        "peak_rss_mb": m["peak_rss_mb"],
        "distinct_vectors": m["rows"]["distinct_vectors"],
        "candidate_pairs": m["graph"]["candidate_pairs"],
        "clusters": m["clusters"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-embed", type=int, default=100_000)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--knn", type=int, default=1_000_000)
    ap.add_argument("--whole", type=int, nargs="*", default=[], help="whole-run day sizes, e.g. 1000000 10000000")
    ap.add_argument("--model", default="hashing", help="model for --whole: a folder, 'hashing', 'static', 'default'")
    ap.add_argument("--minilm-shape", type=Path, default=None, help="MiniLM config+tokenizer folder: random weights")
    ap.add_argument("--work", type=Path, default=Path("bench_out/gpu"))
    a = ap.parse_args()
    if a.n_embed:
        print(json.dumps(bench_embed(a.n_embed, a.tokens)), flush=True)
    if a.knn:
        print(json.dumps(bench_knn(a.knn)), flush=True)
    a.work.mkdir(parents=True, exist_ok=True)
    model = str(random_minilm(a.minilm_shape, a.work / "minilm_random")) if a.minilm_shape else a.model
    for n in a.whole:
        print(json.dumps(bench_whole(n, model, a.work)), flush=True)


if __name__ == "__main__":
    main()
