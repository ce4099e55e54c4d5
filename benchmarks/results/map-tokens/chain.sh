#!/usr/bin/env bash
# Issue 19, exploratory: the identity branch reads the encoder's 4x4 feature map (criteria.md). Resumable: training
# resumes from its checkpoints and each evaluation is skipped when its output exists. About 30 minutes of training and
# 13 of scoring on 2 CPU cores. The baseline's scores are idloss-high's and idloss-ensemble's (same run, same commands).
#   bash benchmarks/results/map-tokens/chain.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/map-tokens R=benchmarks/results/map-tokens LEVER=runs/sft-jitter3k-init-map
. benchmarks/results/score_lever.sh  # lever_chain: the SFT stage, the lever's run, score_lever
lever_chain configs/sft-jitter3k-init-map.yaml
