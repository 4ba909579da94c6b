#!/usr/bin/env bash
# One prepared script for a device session (see the device tool's README): installs the carried wheels,
# runs the gpu-marked tests, then the GPU benchmarks, writing everything under $OUT.
#
#   carry: wheels/ (hdbscan, polars, polars-runtime-32 wheels: `pip download --no-deps -d wheels hdbscan polars`)
#   run:   bash bench/gpu_check.sh            (on the device machine; OUT is set by the tool)
#   local self-check on CPU: OUT=/tmp/gpu_check bash bench/gpu_check.sh --cpu-selfcheck
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT"
SMALL=""
[ "${1:-}" = "--cpu-selfcheck" ] && SMALL=1
PY=${PYTHON:-python3}
if [ -d wheels ]; then
  "$PY" -m pip install -q --no-deps wheels/*.whl 2>&1 | tail -2
fi
"$PY" -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv > "$OUT/nvidia_smi.csv" 2>&1 || true
timeout 240 "$PY" -m pytest -q -m gpu -p no:cacheprovider > "$OUT/gpu_tests.txt" 2>&1
echo "gpu tests rc=$?" >> "$OUT/gpu_tests.txt"
if [ -n "$SMALL" ]; then
  timeout 300 "$PY" bench/gpu_bench.py --n-embed 256 --knn 5000 > "$OUT/gpu_bench.jsonl" 2>"$OUT/gpu_bench.err"
  timeout 300 "$PY" bench/bench_overlap.py --pairs 100000 --rows 20000 > "$OUT/overlap.jsonl" 2>"$OUT/overlap.err"
else
  timeout 240 "$PY" bench/gpu_bench.py --n-embed 100000 --knn 1000000 > "$OUT/gpu_bench.jsonl" 2>"$OUT/gpu_bench.err"
  timeout 180 "$PY" bench/bench_overlap.py --pairs 1000000 10000000 > "$OUT/overlap.jsonl" 2>"$OUT/overlap.err"
fi
tail -n +1 "$OUT"/gpu_tests.txt | tail -3
cat "$OUT"/*.jsonl
