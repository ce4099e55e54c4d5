#!/usr/bin/env bash
# Issue 19, exploratory: which identity factors the baseline's and the lever's group faces carry (criteria.md's check
# that does not rest on the judge's cosine alone): `benchmarks/identity_cap.py` at sigma 1 only, both runs at guidance
# 1 with their trained gates, 100 chosen records. The true renders' and the base model's rows are copied from the
# shipped model's cap (runs/identity-cap-shipped) where it exists, so only the runs are sampled: about 5 minutes each.
#   bash benchmarks/results/idloss-ensemble/probes.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/idloss-ensemble R=benchmarks/results/idloss-ensemble SHIPPED=runs/identity-cap-shipped
for who in baseline lever; do
  run=runs/sft-jitter3k-init; [ $who = lever ] && run=runs/sft-jitter3k-init-ensemble
  w=$O/cap-$who; mkdir -p $w
  if [ -f $SHIPPED/rows.json ] && [ ! -f $w/rows.json ]; then
    cp $SHIPPED/faces-*-truth.npz $SHIPPED/faces-*-base.npz $w/
    $B/python -c "import json,sys; r=json.load(open(sys.argv[1])); json.dump({k: v for k, v in r.items() if '/run/' not in k}, open(sys.argv[2], 'w'), indent=2)" $SHIPPED/rows.json $w/rows.json
  fi
  [ -f $R/cap-$who.json ] || $B/python benchmarks/identity_cap.py --cast data/cast --run $run --id-guidance 1 \
    --limit 100 --steps 20 --sigmas 1.0 --out $w --json $R/cap-$who.json
done
$B/python $R/tables.py
