#!/bin/bash
# Issue 19: the shipped model with its DPO adapter scaled (`idglow train export --dpo-scale S`: W_base + dW_sft +
# S * dW_dpo, exact; 0 is its SFT stage, 1 the shipped model, above 1 extrapolates DPO), scored on the 100 chosen
# records per benchmark under the shipped model's samplers (groups: the trained sampler; age: the paper's window at
# identity guidance 1.25, or each of AGE_G). Resumable: every finished step is skipped.
# Usage: [AGE_G="1.25 1.5"] [GROUP=0] chain.sh SCALE...   (GROUP=0: age only)
set -ex
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
. benchmarks/results/dpo-scale/source.sh  # SRC: the shipped 2,000-step model
B=.venv/bin; R=benchmarks/results/dpo-scale
[ $# -gt 0 ] || { echo "usage: [AGE_G=\"1.25 1.5\"] [GROUP=0] chain.sh SCALE..." >&2; exit 2; }
for S in "$@"; do
  M=runs/idglow-dpo$S
  [ -f $M/provenance.json ] || $B/idglow train export --run $SRC --dpo-scale $S --out $M > /dev/null
  mkdir -p $R/scale$S
  if [ "${GROUP:-1}" != 0 ]; then
    [ -f $M/eval-group/synth-group.json ] || $B/idglow train sft-eval --run $M --limit 100 \
      --benchmark data/cast/synth-group.jsonl --out $M/eval-group
    cp $M/eval-group/synth-group.json $R/scale$S/synth-group.json
  fi
  for G in ${AGE_G:-1.25}; do
    E=eval-g$G-age.kind-window
    [ -f $M/$E/synth-age.json ] || $B/idglow train sft-eval --run $M --limit 100 \
      --id-guidance $G --schedule age.kind=window --benchmark data/cast/synth-age.jsonl --out $M/$E
    cp $M/$E/synth-age.json $R/scale$S/synth-age-g$G-window.json
  done
done
echo CHAIN DONE
