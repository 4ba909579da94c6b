"""The output set is replaced as a unit: ``kill -9`` at random moments of the write stage always leaves the
previous or the new complete, hash-verified set, and the next write removes whatever the killed one left."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

import clusterer
from clusterer.io import artifacts

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import pickle, sys, time
from clusterer.result import Result
import pyarrow.parquet  # imports done before the parent starts its clock
result = pickle.loads(open(sys.argv[1], "rb").read())
print("READY", flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
result.write(sys.argv[2])
print("DONE", time.perf_counter() - t0, flush=True)
"""


def _child(pickled: Path, out: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(pickled), str(out)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    return proc


def test_kill_9_at_20_random_moments_of_the_write_stage(tmp_path, day, fast_cfg):
    old = clusterer.cluster(day[0], fast_cfg())
    new = clusterer.cluster(day[0], fast_cfg(seed=1))
    assert old.run_id != new.run_id
    out = tmp_path / "out"
    old.write(out)
    pickled = tmp_path / "new.pkl"
    pickled.write_bytes(pickle.dumps(new))

    # how long an uninterrupted write of the new set takes here; kills land anywhere within 1.2 times that
    proc = _child(pickled, tmp_path / "timing")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    write_s = float(proc.stdout.readline().split()[1])
    proc.wait()

    rng = np.random.default_rng(0)
    seen = {old.run_id: 0, new.run_id: 0}
    for delay in rng.uniform(0.0, 1.2 * write_s, 20):
        proc = _child(pickled, out)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        manifest = artifacts.verify_set(out)  # every file present and matching its SHA-256
        seen[manifest["run_id"]] += 1
        for name in ("assignments.parquet", "clusters.parquet", "accounts.parquet"):
            ids = pl.read_parquet(out / name, columns=["run_id"])["run_id"].unique().to_list()
            assert ids in ([], [manifest["run_id"]]), (name, ids, manifest["run_id"])
    print(f"write {write_s * 1000:.0f} ms; after 20 kills: previous set {seen[old.run_id]}, new set {seen[new.run_id]}")

    old.write(out)  # the next write cleans up what killed writers left beside the set
    assert artifacts.verify_set(out)["run_id"] == old.run_id
    assert artifacts.leftovers(out) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
