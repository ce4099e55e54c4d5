#!/usr/bin/env bash
# Issue 19, exploratory, after probes.sh: is the lever's FaceSim gain the judge's alone? `encoder_spatial` shares the
# judge's flattened head, so the gain could be a taste they share. Two more embedders, trained on training identities
# and used by nothing else, stand in for the judge: `plain` (the judge's architecture, seed 99) and `resnet` (the
# encoder's, seed 99). Each scores both runs' groups (100 chosen records, noise seed 0, guidance 1), and check_tables.py
# pairs them. Raw FaceSim (the benchmark's mu_real is the judge's). About 15 minutes here.
#   bash benchmarks/results/idloss-ensemble/check_judges.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/idloss-ensemble R=benchmarks/results/idloss-ensemble
for arch in plain resnet; do
  J=$O/judges-check-$arch
  if [ ! -f $J/judge.safetensors ]; then  # the judges folder with its `judge` swapped for the check embedder
    rm -rf $J.tmp && mkdir -p $J.tmp && cp assets/judges/*.safetensors assets/judges/*.json $J.tmp/
    $B/idglow synth train-embedder --name check --arch $arch --seed 99 --out $J.tmp
    mv $J.tmp/check.safetensors $J.tmp/judge.safetensors && mv $J.tmp/check.json $J.tmp/judge.json && mv $J.tmp $J
  fi
  for who in baseline lever; do
    run=runs/sft-jitter3k-init; [ $who = lever ] && run=runs/sft-jitter3k-init-ensemble
    o=$O/check-$arch-$who
    [ -f $o/synth-group.json ] || $B/idglow train sft-eval --run $run --limit 100 --judges $J \
      --benchmark data/cast/synth-group.jsonl --out $o
    mkdir -p $R/check-$arch-$who && cp $o/synth-group.json $o/synth-group.scores.jsonl $R/check-$arch-$who/
  done
  $B/python -c "import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps(r['extra_embedders']['check']))" \
    $J/report.json > $R/check-$arch-embedder.json
done
$B/python $R/check_tables.py
