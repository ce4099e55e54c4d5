#!/usr/bin/env bash
# Issue 19, exploratory: the shipped model's DPO recipe on the identity-loss-off SFT, exported at the shipped DPO scale
# (1.5), scored on the unseen records at the shipped model's samplers, its faces drawn first and its factors probed (criteria.md,
# "If the DPO chain runs"). Run only if chain.sh's criteria 1 and 2 held. Resumable: each step is skipped when its output exists. About 10 minutes of pairs, 9 of
# DPO and 5 per evaluation on 2 CPU cores.   bash benchmarks/results/idloss-off/dpo_chain.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/unseen-idloss-off R=benchmarks/results/idloss-off
S=runs/sft-jitter3k-init-idloss-off P=data/pairs-jitter3k-init-idloss-off D=runs/dpo-jitter3k-init-idloss-off
M=runs/idglow-idloss-off
[ -f $P/pairs.jsonl ] || $B/idglow pairs build --run $S --items 200 --candidates 4 --out $P
[ -f $D/final/lora.safetensors ] || $B/idglow train dpo --config configs/dpo-jitter3k-init-idloss-off.yaml
[ -f $M/provenance.json ] || $B/idglow train export --run $D --out $M --train-command-line "idglow train export --run \
assets/idglow --stage sft --out runs/idglow-sft-jitter2k; \
configs/sft-jitter3k-init-idloss-off.yaml; pairs build --items 200 --candidates 4; \
configs/dpo-jitter3k-init-idloss-off.yaml"
[ -f $M-dpo1.5/provenance.json ] || $B/idglow train export --run $M --dpo-scale 1.5 --out $M-dpo1.5
[ -f $R/skin_faces-dpo.png ] || $B/python benchmarks/skin_faces.py --run $M-dpo1.5 --out $R/skin_faces-dpo.png
. benchmarks/results/jitter3k-init/unseen.sh  # unseen NAME MODEL BENCHMARK GUIDANCE [SCHEDULE]
unseen dpo1.5-group-g1 $M-dpo1.5 synth-group 1
unseen dpo1.5-age-g1.25-window $M-dpo1.5 synth-age 1.25 age.kind=window
[ -f $R/cap-dpo.json ] || $B/python benchmarks/identity_cap.py --cast data/cast --run $M-dpo1.5 --id-guidance 1 \
  --limit 100 --steps 20 --sigmas 1.0 --out $O/cap-dpo --json $R/cap-dpo.json
$B/python $R/dpo_tables.py
