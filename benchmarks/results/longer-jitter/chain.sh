#!/bin/bash
# Issue 19: the jittered-views loss before DPO, from the shipped model's SFT stage (peeled off assets/idglow), then
# pairs and DPO, scored on 100 chosen records per benchmark, exported and confirmed on unseen records (results:
# this folder; the confirmation's results.md/json copied into sampler_confirm/).
set -ex
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=.venv/bin
S=runs/sft-constant-longer-jitter; D=runs/dpo-constant-longer-jitter
GROUP="--benchmark data/cast/synth-group.jsonl"; AGE="--benchmark data/cast/synth-age.jsonl"
[ -d runs/idglow-sft8k ] || $B/idglow train export --run "$(scripts/previous_model.sh)" --stage sft --out runs/idglow-sft8k
$B/idglow train sft --config configs/sft-constant-longer-jitter.yaml --init runs/idglow-sft8k
$B/idglow pairs build --run $S --items 200 --candidates 4 --out data/pairs-constant-longer-jitter
$B/idglow train dpo --config configs/dpo-constant-longer-jitter.yaml
$B/idglow train sft-eval --run $D --limit 100 --id-guidance 1.25 $GROUP --out $D/eval-g1.25-group
$B/idglow train sft-eval --run $D --limit 100 --id-guidance 1.25 --schedule age.kind=window $AGE --out $D/eval-g1.25-age.kind-window
$B/idglow train sft-eval --run $D --limit 100 --id-guidance 1.5 --schedule age.kind=window $AGE --out $D/eval-g1.5-age.kind-window
$B/idglow train export --run $D --out runs/idglow-longer-jitter --scores $D/eval-g1.25-group \
  --scores $D/eval-g1.25-age.kind-window --scores $D/eval-g1.5-age.kind-window --gallery data/cast \
  --train-command-line "idglow train export --run assets/idglow --stage sft --out runs/idglow-sft8k; configs/sft-constant-longer-jitter.yaml; pairs build --items 200 --candidates 4; configs/dpo-constant-longer-jitter.yaml"
$B/python benchmarks/sampler_confirm.py --run runs/idglow-longer-jitter --out runs/confirm-longer-jitter --against benchmarks/results/sampler_confirm-constant-longer
echo CHAIN DONE
