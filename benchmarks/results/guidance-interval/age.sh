#!/usr/bin/env bash
# Exploratory, after the group decision (criteria.md leaves the age sampler out of it): the shipped age sampler (the
# paper's age window, guidance 1.25 at every step) against guidance limited to sigma <= 0.5, on the chosen records.
# About 3 minutes per setting on 2 CPU cores.   bash benchmarks/results/guidance-interval/age.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/guidance-interval/age R=benchmarks/results/guidance-interval/age
for s in 1.5:0:0.5 2:0:0.5; do
  IFS=: read g lo hi <<< "$s"
  name=g$g-$lo-$hi-window
  [ -f $O/$name/synth-age.json ] || $B/idglow train sft-eval --run assets/idglow --limit 100 --schedule age.kind=window \
    --benchmark data/cast/synth-age.jsonl --id-guidance $g --id-guidance-interval $lo $hi --out $O/$name
  mkdir -p $R/$name && cp $O/$name/synth-age.json $O/$name/synth-age.scores.jsonl $R/$name/
done
