#!/usr/bin/env bash
# Issue 19, exploratory: the identity loss switched off at low sigma (criteria.md). Resumable: training resumes from
# its checkpoints and each evaluation is skipped when its summary exists. About 32 minutes of training and 10 of
# scoring on 2 CPU cores.   bash benchmarks/results/idloss-high/chain.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/idloss-high R=benchmarks/results/idloss-high
BASELINE=runs/sft-jitter3k-init LEVER=runs/sft-jitter3k-init-idloss-high  # the baseline: jitter3k-init/chain.sh
[ -f $LEVER/final/identity_branch.safetensors ] || $B/idglow train sft --config configs/sft-jitter3k-init-idloss-high.yaml
for who in baseline lever; do
  run=$BASELINE; [ $who = lever ] && run=$LEVER
  [ -f $O/$who-group/synth-group.json ] || $B/idglow train sft-eval --run $run --limit 100 \
    --benchmark data/cast/synth-group.jsonl --out $O/$who-group
  [ -f $O/$who-age/synth-age.json ] || $B/idglow train sft-eval --run $run --limit 100 --id-guidance 1.25 \
    --schedule age.kind=window --benchmark data/cast/synth-age.jsonl --out $O/$who-age
  for b in group age; do
    mkdir -p $R/$who-$b && cp $O/$who-$b/synth-$b.json $O/$who-$b/synth-$b.scores.jsonl $R/$who-$b/
  done
  cp $run/diagnostics.jsonl $R/$who-diagnostics.jsonl
  [ -f $R/skin_faces-$who.png ] || $B/python benchmarks/skin_faces.py --run $run --out $R/skin_faces-$who.png
done
$B/python $R/tables.py
