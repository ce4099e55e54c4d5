#!/usr/bin/env bash
# Issue 19, exploratory: identity strength (id_scale) above 1 on the shipped model's groups; criteria.md says what is
# decided how. Resumable; about 2.5 minutes per evaluation on 2 CPU cores.   bash benchmarks/results/id-scale/chain.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/id-scale R=benchmarks/results/id-scale
for s in 1.25 1.5; do
  [ -f $O/chosen/scale$s/synth-group.json ] || $B/idglow train sft-eval --run assets/idglow --limit 100 \
    --benchmark data/cast/synth-group.jsonl --id-scale $s --out $O/chosen/scale$s
  mkdir -p $R/chosen/scale$s && cp $O/chosen/scale$s/synth-group.json $O/chosen/scale$s/synth-group.scores.jsonl $R/chosen/scale$s/
done
