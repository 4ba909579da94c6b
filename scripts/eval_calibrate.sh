#!/usr/bin/env bash
# Measure what `clusterer calibrate` does: fit the campaign weights on one labelled day's verdicts, apply
# them to another day, score both ways.
#
#   bash scripts/eval_calibrate.sh DAY_A DAY_B WORK_DIR SCORE_PY [--nometa]
#
# DAY_A / DAY_B: labelled days (traffic.parquet + labels.parquet, e.g. from scripts/gen_scenario.py with
# two seeds). SCORE_PY: the evaluation's score.py. --nometa: run as a deployment whose logs carry no
# account metadata (org_id, account_created_at), the case the default weights serve least well; families of
# legitimate customers are then left out of the verdicts (README, "Campaign decisions").
set -euo pipefail
A=${1:?day A}; B=${2:?day B}; WORK=${3:?work dir}; SCORE=${4:?score.py}; MODE=${5:-}
PY=${PYTHON:-.venv/bin/python}
cd "$(dirname "$0")/.."
mkdir -p "$WORK"
: > "$WORK/base.toml"
drop=()
if [ "$MODE" = "--nometa" ]; then
  cp scripts/nometa.toml "$WORK/base.toml"
  drop=(--drop-group legit_templated)
fi
run() {  # day run_name config
  "$PY" -m clusterer.cli run "$1/traffic.parquet" --out "$WORK/$2" --model static -q --config "$3" > /dev/null
  "$PY" "$SCORE" --labels "$1/labels.parquet" --pred "$WORK/$2/assignments.parquet" \
    --accounts "$WORK/$2/accounts.parquet" > "$WORK/$2.score.txt"
}
run "$A" a_before "$WORK/base.toml"
run "$B" b_before "$WORK/base.toml"
"$PY" scripts/verdicts_from_labels.py --labels "$A/labels.parquet" --run "$WORK/a_before" --out "$WORK/a.csv" "${drop[@]}"
"$PY" scripts/verdicts_from_labels.py --labels "$B/labels.parquet" --run "$WORK/b_before" --out "$WORK/b.csv" "${drop[@]}"
"$PY" -m clusterer.cli calibrate "$WORK/a.csv" --test "$WORK/b.csv" --config "$WORK/base.toml" --out "$WORK/fitted.toml"
cat "$WORK/base.toml" "$WORK/fitted.toml" > "$WORK/after.toml"
run "$B" b_after "$WORK/after.toml"
for r in b_before b_after; do
  echo "== day B, $r"
  grep -E "^(campaign_recall|prompt_flags|account_flags)" "$WORK/$r.score.txt"
done
