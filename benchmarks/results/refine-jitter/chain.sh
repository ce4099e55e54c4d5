#!/bin/bash
# Issue 19, this session: the shipped model refined with the jittered-views loss, then DPO, scored and confirmed.
set -ex
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=.venv/bin
S=runs/sft-refine-jitter; D=runs/dpo-refine-jitter
GROUP="--benchmark data/cast/synth-group.jsonl"; AGE="--benchmark data/cast/synth-age.jsonl"
$B/idglow train sft --config configs/sft-refine-jitter.yaml --init "$(scripts/previous_model.sh)"
$B/idglow pairs build --run $S --items 200 --candidates 4 --out data/pairs-refine-jitter
$B/idglow train dpo --config configs/dpo-refine-jitter.yaml
$B/idglow train sft-eval --run $D --limit 100 --id-guidance 1.25 $GROUP --out $D/eval-g1.25-group
$B/idglow train sft-eval --run $D --limit 100 --id-guidance 1.25 --schedule age.kind=window $AGE --out $D/eval-g1.25-age.kind-window
$B/idglow train sft-eval --run $D --limit 100 --id-guidance 1.5 --schedule age.kind=window $AGE --out $D/eval-g1.5-age.kind-window
$B/idglow train export --run $D --out runs/idglow-refine --scores $D/eval-g1.25-group --scores $D/eval-g1.25-age.kind-window \
  --scores $D/eval-g1.5-age.kind-window --gallery data/cast \
  --train-command-line "configs/sft-refine-jitter.yaml --init assets/idglow; pairs build --items 200 --candidates 4; configs/dpo-refine-jitter.yaml"
$B/python benchmarks/sampler_confirm.py --run runs/idglow-refine --out runs/confirm-refine --against benchmarks/results/sampler_confirm-constant-longer
echo CHAIN DONE
