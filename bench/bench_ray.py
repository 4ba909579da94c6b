"""The Ray engine beside the local one: a whole day, and the embedding stage on one and two simulated nodes.

    python bench/bench_ray.py run LOGS --engine local|ray [--model static] [--out DIR]
    python bench/bench_ray.py embed LOGS [--model static] [--texts 50000] [--nodes 1 2] [--cpus-per-node 1]

``run`` clusters LOGS with the engine named (a local Ray on this machine's CPUs for ``ray``) and prints one
JSON line: wall seconds, peak RSS of the driver and of the Ray processes (workers, raylet, GCS: summed over
processes, sampled every 0.2 s from /proc), per-stage seconds, and the output directory (score it with the
evaluation's score.py). ``embed`` starts a ``ray.cluster_utils.Cluster`` of N nodes for each N given and
times the engine's embedding actors over the day's first distinct texts (cache off): texts / s per N.
Workers import this checkout (``local_runtime_env``). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_kb(pid: int) -> int:
    try:
        for line in open(f"/proc/{pid}/status", encoding="ascii"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _ray_pids() -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            cmd = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ")
        except OSError:
            continue
        if b"ray::" in cmd or b"raylet" in cmd or b"gcs_server" in cmd or b"ray/_private" in cmd:
            out.append(int(d))
    return out


class Sampler(threading.Thread):
    """Peak RSS (MB) of the Ray processes, summed, sampled every ``every`` seconds."""

    def __init__(self, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.every, self.peak_mb, self.stop = every, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_mb = max(self.peak_mb, sum(_rss_kb(p) for p in _ray_pids()) / 1024)
            time.sleep(self.every)


def cmd_run(a: argparse.Namespace) -> None:
    from clusterer import api

    sampler = Sampler()
    sampler.start()
    t0 = time.perf_counter()
    res = api.cluster([a.logs], model=a.model, quiet=True, engine=a.engine)
    wall = time.perf_counter() - t0
    out = Path(a.out or f"bench_out/ray_{a.engine}")
    if out.exists():
        import shutil

        shutil.rmtree(out)
    res.write(out)
    sampler.stop.set()
    sampler.join()
    print(
        json.dumps(
            {
                "engine": a.engine,
                "rows": res.manifest["rows"]["in"],
                "wall_s": round(wall, 1),
                "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "ray_processes_peak_rss_mb": round(sampler.peak_mb, 1),
                "stages_s": {k: v["seconds"] for k, v in res.manifest["stages"].items()},
                "engine_info": res.manifest.get("engine"),
                "out": str(out),
            }
        )
    )


def cmd_embed(a: argparse.Namespace) -> None:
    import polars as pl
    import ray
    from ray.cluster_utils import Cluster

    from clusterer.accel.backend import Backend
    from clusterer.config import EngineConfig, load_config
    from clusterer.run.ray_engine import RayEngine, local_runtime_env
    from clusterer.text.normalise import normalise

    run_cfg = load_config(None, **{"embed.model": a.model, "embed.cache_dir": "none"})
    texts = normalise(pl.read_parquet(a.logs, columns=["text"])["text"], run_cfg.normalise).text
    texts = texts.unique(maintain_order=True).head(a.texts).to_list()
    cfg = run_cfg.embed
    for nodes in a.nodes:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": a.cpus_per_node})
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=a.cpus_per_node)
        ray.init(address=cluster.address, runtime_env=local_runtime_env(), log_to_driver=False)
        try:
            engine = RayEngine(EngineConfig(kind="ray"), Backend.CPU)
            encode = engine.encoder_map(cfg)
            encode(texts[:512])  # actors start, the model loads: not timed
            t0 = time.perf_counter()
            vecs = encode(texts)
            secs = time.perf_counter() - t0
            print(
                json.dumps(
                    {
                        "nodes": nodes,
                        "cpus": engine.cpus,
                        "actors": engine.actors(),
                        "model": a.model,
                        "texts": len(vecs),
                        "seconds": round(secs, 2),
                        "texts_per_s": round(len(vecs) / secs, 1),
                    }
                ),
                flush=True,
            )
        finally:
            ray.shutdown()
            cluster.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("logs")
    r.add_argument("--engine", default="ray", choices=["local", "ray"])
    r.add_argument("--model", default="static")
    r.add_argument("--out")
    e = sub.add_parser("embed")
    e.add_argument("logs")
    e.add_argument("--model", default="static")
    e.add_argument("--texts", type=int, default=50_000)
    e.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    e.add_argument("--cpus-per-node", type=int, default=1)
    a = ap.parse_args()
    (cmd_run if a.cmd == "run" else cmd_embed)(a)


if __name__ == "__main__":
    main()
