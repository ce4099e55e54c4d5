#!/bin/bash
# Issue 19, after chain.sh (so exploratory): DPO of the rebuilt model trained again with seed 1 on the same SFT run and
# pairs, scored on the unseen group records at the same sampler (guidance 1.25, noise seeds 0 and 1000) and paired
# against the seed-0 DPO model: the training noise of the DPO stage alone. About 20 minutes here; resumable.
set -ex
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=.venv/bin; R=benchmarks/results/jitter3k-init; D=runs/dpo-jitter3k-init-age400-seed1; O=runs/unseen-jitter3k-init
[ -f runs/idglow-jitter3k-init/provenance.json ] || { echo "run chain.sh first" >&2; exit 1; }
[ -f $D/final/lora.safetensors ] || $B/idglow train dpo --config configs/dpo-jitter3k-init-age400-seed1.yaml
. $R/unseen.sh
unseen dpo-seed1-group-g1.25 $D synth-group 1.25
$B/python $R/tables.py > /dev/null
echo DPO SEED DONE
