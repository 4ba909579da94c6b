#!/usr/bin/env bash
# Measure the network and payment terms (README "Network and payment signals"): a generated 100k day with
# every behaviour (cover traffic, ...) and --network (campaigns behind proxy pools, customers behind one
# corporate egress), run with and without the five network columns, and with and without org_id /
# account_created_at; each run scored with the evaluation's score.py.
#
#   bash scripts/eval_network.sh POOLS_DIR SCORE_PY WORK_DIR [SEED]
#
# Prints one line per run: prompt precision / recall, average precision, FPR per kind (legit_templated =
# the customers behind one corporate egress). About 6 minutes on two cores.
set -euo pipefail
POOLS=${1:?pools dir}
SCORE=${2:?path to score.py}
WORK=${3:?work dir}
SEED=${4:-31}
PY=${PYTHON:-.venv/bin/python}
cd "$(dirname "$0")/.."
mkdir -p "$WORK/runs"
DAY="$WORK/net$SEED"
[ -f "$DAY/traffic.parquet" ] || "$PY" scripts/gen_scenario.py --out "$DAY" --n 100000 --all --network \
  --seed "$SEED" --pools "$POOLS" > /dev/null
"$PY" -c "import polars as pl, sys; pl.read_parquet(sys.argv[1] + '/traffic.parquet').drop('client_ip', 'asn', \
'proxy', 'user_agent', 'payment_fingerprint').write_parquet(sys.argv[1] + '/nonet.parquet')" "$DAY"
cp scripts/nometa.toml "$WORK/nometa.toml"
for spec in meta_net:traffic: meta_nonet:nonet: nometa_net:traffic:nometa nometa_nonet:nonet:nometa; do
  IFS=: read -r name file cfg <<< "$spec"
  args=()
  [ -n "$cfg" ] && args=(--config "$WORK/nometa.toml")
  out="$WORK/runs/$name"
  [ -f "$out/clusters.parquet" ] || "$PY" -m clusterer.cli run "$DAY/$file.parquet" --out "$out" --model static \
    --device cpu -q "${args[@]}" > /dev/null
  "$PY" "$SCORE" --labels "$DAY/labels.parquet" --pred "$out/assignments.parquet" \
    --accounts "$out/accounts.parquet" --out "$out.score.json" > /dev/null
  "$PY" -c "import json, sys; s = json.load(open(sys.argv[1]))['prompt_flags']; print(sys.argv[2], \
'precision', s['precision'], 'recall', s['recall'], 'AP', s.get('average_precision'), 'FPR', s['fpr_by_kind'])" \
    "$out.score.json" "$name"
done
