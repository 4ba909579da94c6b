#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls exactly this).
# Creates .venv if missing, installs the package with its dev extra (CPU torch pinned), lints,
# compiles every CUDA kernel to PTX when nvcc is available, then runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q torch==2.13.0 -e ".[dev]"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
shopt -s nullglob
kernels=(kernels/*.cu)
if [ ${#kernels[@]} -gt 0 ]; then
  if command -v nvcc >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    for cu in "${kernels[@]}"; do
      nvcc --ptx -arch=compute_80 -o "$tmp/$(basename "$cu" .cu).ptx" "$cu"
      echo "nvcc: compiled $cu"
    done
    rm -rf "$tmp"
  else
    echo "nvcc not found: skipping kernel compilation"
  fi
fi
.venv/bin/python -m pytest "$@"
