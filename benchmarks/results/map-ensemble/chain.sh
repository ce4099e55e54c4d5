#!/usr/bin/env bash
# Issue 19, exploratory: the feature map in the branch and the loss over two embedders at once (criteria.md).
# Resumable: training resumes from its checkpoints and each evaluation is skipped when its output exists. About 32
# minutes of training and 13 of scoring on 2 CPU cores. Its reference's scores are idloss-ensemble's.
#   bash benchmarks/results/map-ensemble/chain.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/map-ensemble R=benchmarks/results/map-ensemble LEVER=runs/sft-jitter3k-init-map-ensemble
. benchmarks/results/score_lever.sh  # lever_chain: the SFT stage, the lever's run, score_lever
lever_chain configs/sft-jitter3k-init-map-ensemble.yaml
