#!/bin/bash
# Issue 19: the DPO-scaled model (scale S, default 1.5) and the shipped model confirmed on fresh held-out records
# (criteria-fresh.md): a second render of the cast's benchmarks with another scene seed, scored at each model's
# recommended samplers and paired. About 25 minutes here. Resumable. Usage: confirm-fresh.sh [S]  (after confirm.sh S)
set -ex
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
S=${1:-1.5}
. benchmarks/results/dpo-scale/source.sh  # SRC: the shipped 2,000-step model
B=.venv/bin; M=runs/idglow-dpo$S; F=data/cast-b1; R=benchmarks/results/dpo-scale/fresh
[ -f $F/synth-age.mu_real.json ] || $B/idglow synth build --out $F --build.seed 1
[ -f $M/eval-g2-age.kind-window/synth-age.json ] || { echo "run confirm.sh $S first (its evaluations)" >&2; exit 1; }
EVALS=""; for e in $M/eval-group $M/eval-age $M/eval-g1.25-group $M/eval-g1.5-group $M/eval-g{1.25,1.5,1.75,2}-age.kind-window; do
  EVALS="$EVALS --scores $e"; done
$B/idglow train export --run $SRC --dpo-scale $S --out $M-scored $EVALS > /dev/null  # the rule as it is now
$B/python benchmarks/sampler_confirm.py --run $SRC --data $F --out runs/fresh-shipped
$B/python benchmarks/sampler_confirm.py --run $M-scored --data $F --out runs/fresh-dpo$S --against runs/fresh-shipped
for pair in shipped:runs/fresh-shipped scale$S:runs/fresh-dpo$S; do
  name=${pair%%:*}; out=${pair#*:}
  if [ -e $R/$name/results.md ]; then echo "kept $R/$name; this run's: $out"; continue; fi
  mkdir -p $R/$name && cp $out/results.{md,json} $R/$name/ && cp -r $out/synth-*-seed* $R/$name/
done
cp $M-scored/sampler.json $R/scale$S-sampler.json
echo CONFIRM FRESH DONE
