#!/bin/bash
# Issue 19: the 12,000-step constant-gate SFT rebuilt from the shipped model's SFT stage, then 1,000 steps of the
# jittered-views loss, pairs and DPO; scored on 100 chosen records per benchmark, exported and confirmed on unseen
# records. Resumable: re-run it and every step either resumes from its checkpoints or is skipped when done.
set -ex
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=.venv/bin
L=runs/sft-constant-longest-init; S=runs/sft-constant-longest-init-jitter; D=runs/dpo-constant-longest-init-jitter
P=data/pairs-constant-longest-init-jitter; M=runs/idglow-longest-init-jitter
GROUP="--benchmark data/cast/synth-group.jsonl"; AGE="--benchmark data/cast/synth-age.jsonl"
[ -d runs/idglow-sft8k ] || $B/idglow train export --run assets/idglow --stage sft --out runs/idglow-sft8k
[ -f $L/final/lora.safetensors ] || $B/idglow train sft --config configs/sft-constant-longest-init.yaml --init runs/idglow-sft8k
[ -f $S/final/lora.safetensors ] || $B/idglow train sft --config configs/sft-constant-longest-init-jitter.yaml
[ -f $P/pairs.jsonl ] || $B/idglow pairs build --run $S --items 200 --candidates 4 --out $P
[ -f $D/final/lora.safetensors ] || $B/idglow train dpo --config configs/dpo-constant-longest-init-jitter.yaml
# the samplers the shipped model was offered for these tasks: groups at guidance 1.25 and 1.5 (trained gate), age
# with the paper's window at guidance 1.25 to 2; export recommends per task from these scores (idglow.runs.sampler)
EVALS=""
for g in 1.25 1.5; do
  E=eval-g$g-group; EVALS="$EVALS --scores $D/$E"
  [ -f $D/$E/synth-group.json ] || $B/idglow train sft-eval --run $D --limit 100 --id-guidance $g $GROUP --out $D/$E
done
for g in 1.25 1.5 1.75 2; do
  E=eval-g$g-age.kind-window; EVALS="$EVALS --scores $D/$E"
  [ -f $D/$E/synth-age.json ] || $B/idglow train sft-eval --run $D --limit 100 --id-guidance $g --schedule age.kind=window $AGE --out $D/$E
done
[ -f $M/provenance.json ] || $B/idglow train export --run $D --out $M $EVALS --gallery data/cast \
  --train-command-line "idglow train export --run assets/idglow --stage sft --out runs/idglow-sft8k; configs/sft-constant-longest-init.yaml --init runs/idglow-sft8k; configs/sft-constant-longest-init-jitter.yaml; pairs build --items 200 --candidates 4; configs/dpo-constant-longest-init-jitter.yaml"
$B/python benchmarks/sampler_confirm.py --run $M --out runs/confirm-longest-init-jitter --against benchmarks/results/sampler_confirm
mkdir -p benchmarks/results/longest-init-jitter/sampler_confirm
for f in $D/eval-*/*.json; do cp $f benchmarks/results/longest-init-jitter/$(basename $(dirname $f)).json; done
cp runs/confirm-longest-init-jitter/results.{md,json} benchmarks/results/longest-init-jitter/sampler_confirm/
echo CHAIN DONE
