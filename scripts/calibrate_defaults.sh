#!/usr/bin/env bash
# Reproduce the default campaign weights ([campaign] in clusterer/config.py) with `clusterer calibrate`.
#
#   bash scripts/calibrate_defaults.sh POOLS_DIR EVAL_DIR WORK_DIR
#
# POOLS_DIR: the public prompt pools (benign_prompts.parquet, payloads.parquet, ...); EVAL_DIR: the public
# labelled scenarios (public_100k/, public_hard_100k/, each with traffic.parquet and labels.parquet).
# Training verdicts: a generated 100k day with every behaviour (this project's dev families) and the public
# hard 100k day, each run with and without the account metadata columns (org_id, account_created_at), plus
# the public 100k day (no metadata). Families of legitimate customers are left out of the runs without
# metadata: nothing in the logs tells them from a campaign there (README, "Campaign decisions").
# Test verdicts: a generated day with the held-out family set. Takes about 15 minutes on two cores.
set -euo pipefail
POOLS=${1:?pools dir}
EVAL=${2:?eval dir}
WORK=${3:?work dir}
PY=${PYTHON:-.venv/bin/python}
cd "$(dirname "$0")/.."
mkdir -p "$WORK"
cp scripts/nometa.toml "$WORK/nometa.toml"
for fam in dev holdout; do
  [ -f "$WORK/$fam/traffic.parquet" ] || "$PY" scripts/gen_scenario.py --out "$WORK/$fam" --n 100000 --all \
    --families "$fam" --pools "$POOLS"
done
run() {  # day_dir run_name [extra args]
  [ -f "$WORK/runs/$2/clusters.parquet" ] || "$PY" -m clusterer.cli run "$1/traffic.parquet" \
    --out "$WORK/runs/$2" --model static -q "${@:3}" > /dev/null
}
verdicts() {  # day_dir run_name [extra args]
  "$PY" scripts/verdicts_from_labels.py --labels "$1/labels.parquet" --run "$WORK/runs/$2" \
    --out "$WORK/verdicts/$2.csv" "${@:3}"
}
run "$WORK/dev" dev_meta
run "$WORK/dev" dev_nometa --config "$WORK/nometa.toml"
run "$EVAL/public_hard_100k" ph_meta
run "$EVAL/public_hard_100k" ph_nometa --config "$WORK/nometa.toml"
run "$EVAL/public_100k" p100
run "$WORK/holdout" ho_meta
verdicts "$WORK/dev" dev_meta
verdicts "$WORK/dev" dev_nometa --drop-group legit_templated
verdicts "$EVAL/public_hard_100k" ph_meta
verdicts "$EVAL/public_hard_100k" ph_nometa --drop-group legit_templated
verdicts "$EVAL/public_100k" p100
verdicts "$WORK/holdout" ho_meta
V="$WORK/verdicts"
"$PY" -m clusterer.cli calibrate "$V/dev_meta.csv" "$V/dev_nometa.csv" "$V/ph_meta.csv" "$V/ph_nometa.csv" \
  "$V/p100.csv" --test "$V/ho_meta.csv" --out "$WORK/campaign.toml"
cat "$WORK/campaign.toml"
