#!/usr/bin/env bash
# Issue 19: the ensemble-loss model as a shipping candidate (criteria-ship.md), after dpo_chain.sh's criteria held.
# The shipped model's protocol (Makefile `idglow-model`) on the DPO-scaled model dpo_chain.sh exported: scored under
# the Makefile's samplers on the chosen records, exported with the sampler those scores recommend and a gallery,
# confirmed on the unseen records (reusing dpo_chain.sh's evaluations where the recommendation is the same sampler:
# sampler_confirm.py checks), then on fresh records (data/cast-b1) paired against the shipped model's. About 40
# minutes on 2 CPU cores. Resumable. Copying the candidate into assets/idglow is a separate, manual step.
# SCORE_ONLY=1 stops after the chosen-record scores (about 20 minutes), e.g. to read which age sampler buys children.
#   bash benchmarks/results/idloss-ensemble/ship.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} R=benchmarks/results/idloss-ensemble M=runs/idglow-ensemble S=runs/idglow-ensemble-dpo1.5
C=runs/idglow-ensemble-candidate F=data/cast-b1
GROUP="--benchmark data/cast/synth-group.jsonl" AGE="--benchmark data/cast/synth-age.jsonl"
[ -f $S/eval/synth-age.json ] || $B/idglow train sft-eval --run $S --limit 100 --out $S/eval
for g in 1.25 1.5; do [ -f $S/eval-g$g-group/synth-group.json ] || \
  $B/idglow train sft-eval --run $S --limit 100 --id-guidance $g $GROUP --out $S/eval-g$g-group; done
for g in 1.25 1.5 1.75 2; do [ -f $S/eval-g$g-age.kind-window/synth-age.json ] || \
  $B/idglow train sft-eval --run $S --limit 100 --id-guidance $g --schedule age.kind=window $AGE \
    --out $S/eval-g$g-age.kind-window; done
[ -z "${SCORE_ONLY:-}" ] || { echo "SCORE_ONLY: scored the samplers; stopping before the export"; exit 0; }
EVALS=""; for e in eval eval-g1.25-group eval-g1.5-group eval-g{1.25,1.5,1.75,2}-age.kind-window; do
  EVALS="$EVALS --scores $S/$e"; done
[ -f $C/provenance.json ] || $B/idglow train export --run $M --dpo-scale 1.5 --out $C $EVALS --train-command-line \
  "idglow train export --run assets/idglow --stage sft --out runs/idglow-sft-jitter2k; idglow synth train-embedder \
--name encoder_spatial --arch spatial --seed 37; configs/sft-jitter3k-init-ensemble.yaml; pairs build --items 200 \
--candidates 4; configs/dpo-jitter3k-init-ensemble.yaml; train export --dpo-scale 1.5 (benchmarks/results/idloss-ensemble/)"
mkdir -p runs/confirm-ensemble
for pair in synth-group:dpo1.5-group-g1 synth-age:dpo1.5-age-g1.25-window; do  # sampler_confirm refuses a mismatch
  for seed in 0 1000; do d=runs/confirm-ensemble/${pair%%:*}-seed$seed
    [ -e $d ] || cp -r runs/unseen-ensemble/${pair#*:}-seed$seed $d; done; done
$B/python benchmarks/sampler_confirm.py --run $C --out runs/confirm-ensemble --against benchmarks/results/sampler_confirm \
  || { echo "unseen confirmation refused a reused evaluation: remove runs/confirm-ensemble/synth-* and re-run" >&2; exit 1; }
[ -f $F/synth-age.mu_real.json ] || $B/idglow synth build --out $F --build.seed 1
$B/python benchmarks/sampler_confirm.py --run $C --data $F --out runs/fresh-ensemble \
  --against benchmarks/results/dpo-scale/fresh/scale1.5
for pair in unseen:runs/confirm-ensemble fresh:runs/fresh-ensemble; do
  mkdir -p $R/${pair%%:*} && cp ${pair#*:}/results.{md,json} $R/${pair%%:*}/ && cp -r ${pair#*:}/synth-*-seed* $R/${pair%%:*}/
done
cp $C/sampler.json $R/candidate-sampler.json
echo SHIP CANDIDATE SCORED
