#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls exactly this).
# Creates .venv if missing, installs the package with its dev extra (CPU torch pinned, the other packages at
# the tested versions of scripts/constraints.txt), lints,
# compiles every CUDA kernel to PTX when nvcc is available, installs Chromium for the report's browser
# tests when missing (as root), then runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q torch==2.13.0 -c scripts/constraints.txt -e ".[dev]"
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
# The HTML report's browser tests drive the system's Chromium through playwright (never playwright's own
# browser download). Install Debian's package when it is missing and we may; otherwise say why they skip.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "chromium not found: installing Debian's chromium package for the report's browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium not found and not root (or no apt-get): the report's browser tests will be skipped;" \
      "install it with 'apt-get install chromium' (or set CLUSTERER_CHROMIUM) to run them"
  fi
fi
if command -v chromium >/dev/null 2>&1 || [ -n "${CLUSTERER_CHROMIUM:-}" ]; then
  export CLUSTERER_REQUIRE_BROWSER=1  # a browser is there: failing to drive it is a failure, not a skip
fi
.venv/bin/python -m pytest "$@"
