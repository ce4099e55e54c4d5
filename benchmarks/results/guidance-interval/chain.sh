#!/usr/bin/env bash
# Issue 19: identity guidance in a limited sigma interval on the shipped model; criteria.md says what is decided how.
# Resumable (each evaluation is skipped when its summary exists). About 2-3 minutes per chosen-record evaluation and
# 5 per unseen one on 2 CPU cores.   bash benchmarks/results/guidance-interval/chain.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/guidance-interval R=benchmarks/results/guidance-interval
SETTINGS="1.5:0.7:1 2:0.7:1 3:0.7:1 1.5:0.5:1 2:0.5:1 2:0.4:0.8 1.5:0:0.5 2:0:0.5 2:0.2:0.6"
for s in $SETTINGS; do
  IFS=: read g lo hi <<< "$s"
  name=g$g-$lo-$hi
  [ -f $O/chosen/$name/synth-group.json ] || $B/idglow train sft-eval --run assets/idglow --limit 100 \
    --benchmark data/cast/synth-group.jsonl --id-guidance $g --id-guidance-interval $lo $hi --out $O/chosen/$name
  mkdir -p $R/chosen/$name && cp $O/chosen/$name/synth-group.json $O/chosen/$name/synth-group.scores.jsonl $R/chosen/$name/
done
$B/python $R/tables.py pick
pick=$(cat $R/pick.txt)
if [ "$pick" = none ]; then echo "the rule picked a setting without an interval: step 2 not run"; exit 0; fi
IFS=: read g lo hi <<< "$pick"
for seed in 0 1000; do
  o=$O/unseen/g$g-$lo-$hi-seed$seed
  [ -f $o/synth-group.json ] || $B/idglow train sft-eval --run assets/idglow --limit 100 --complement --seed $seed \
    --benchmark data/cast/synth-group.jsonl --id-guidance $g --id-guidance-interval $lo $hi --out $o
  mkdir -p $R/unseen/g$g-$lo-$hi-seed$seed && cp $o/synth-group.json $o/synth-group.scores.jsonl $R/unseen/g$g-$lo-$hi-seed$seed/
done
$B/python $R/tables.py
