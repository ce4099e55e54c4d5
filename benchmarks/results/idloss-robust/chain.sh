#!/usr/bin/env bash
# Issue 19, exploratory: the identity loss through a robust embedder for 1,000 steps (criteria.md). Resumable:
# training resumes from its checkpoints and each evaluation is skipped when its output exists. About 7 minutes for the
# embedder, 35 of training and 20 of scoring on 2 CPU cores. The baseline's scores are idloss-high's and
# idloss-ensemble's (same run, same commands).
#   bash benchmarks/results/idloss-robust/chain.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/idloss-robust R=benchmarks/results/idloss-robust LEVER=runs/sft-jitter3k-init-idloss-robust
[ -f runs/idglow-sft-jitter2k/provenance.json ] || \
  $B/idglow train export --run assets/idglow --stage sft --out runs/idglow-sft-jitter2k
[ -f assets/judges/encoder_robust.safetensors ] || \
  $B/idglow synth train-embedder --name encoder_robust --arch resnet --seed 37 --adversarial-eps 0.06
[ -f $R/factor_sensitivity.json ] || $B/python benchmarks/factor_sensitivity.py --cast data/cast \
  --extra encoder_robust --json $R/factor_sensitivity.json
[ -f $LEVER/final/identity_branch.safetensors ] || $B/idglow train sft --config configs/sft-jitter3k-init-idloss-robust.yaml
. benchmarks/results/score_lever.sh  # score_lever: faces, benchmarks, check embedder, probes, tables.py
score_lever
