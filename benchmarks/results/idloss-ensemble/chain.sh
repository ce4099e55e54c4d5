#!/usr/bin/env bash
# Issue 19, exploratory: the identity loss averaged over the encoder and `encoder_spatial` (criteria.md). Resumable:
# training resumes from its checkpoints and each evaluation is skipped when its summary exists. About 35 minutes of
# training and 6 of scoring on 2 CPU cores. The baseline's scores are idloss-high's (same run, same commands).
#   bash benchmarks/results/idloss-ensemble/chain.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/idloss-ensemble R=benchmarks/results/idloss-ensemble
LEVER=runs/sft-jitter3k-init-ensemble
[ -f assets/judges/encoder_spatial.safetensors ] || \
  $B/idglow synth train-embedder --name encoder_spatial --arch spatial --seed 37
[ -f runs/idglow-sft-jitter2k/provenance.json ] || \
  $B/idglow train export --run assets/idglow --stage sft --out runs/idglow-sft-jitter2k
[ -f $LEVER/final/identity_branch.safetensors ] || $B/idglow train sft --config configs/sft-jitter3k-init-ensemble.yaml
[ -f $O/lever-group/synth-group.json ] || $B/idglow train sft-eval --run $LEVER --limit 100 \
  --benchmark data/cast/synth-group.jsonl --out $O/lever-group
[ -f $O/lever-age/synth-age.json ] || $B/idglow train sft-eval --run $LEVER --limit 100 --id-guidance 1.25 \
  --schedule age.kind=window --benchmark data/cast/synth-age.jsonl --out $O/lever-age
for b in group age; do
  mkdir -p $R/lever-$b && cp $O/lever-$b/synth-$b.json $O/lever-$b/synth-$b.scores.jsonl $R/lever-$b/
done
cp $LEVER/diagnostics.jsonl $R/lever-diagnostics.jsonl
[ -f $R/skin_faces-lever.png ] || $B/python benchmarks/skin_faces.py --run $LEVER --out $R/skin_faces-lever.png
$B/python $R/tables.py
