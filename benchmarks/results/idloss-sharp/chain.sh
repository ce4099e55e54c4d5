#!/usr/bin/env bash
# Issue 19, exploratory: the identity loss only where x0_hat is sharp (criteria.md). Resumable: training resumes from
# its checkpoints and each evaluation is skipped when its summary exists. About 35 minutes of training and 10 of
# scoring on 2 CPU cores. The baseline's scores are idloss-high's (same run, same commands).
#   bash benchmarks/results/idloss-sharp/chain.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} O=runs/idloss-sharp R=benchmarks/results/idloss-sharp LEVER=runs/sft-jitter3k-init-idloss-sharp
[ -f runs/idglow-sft-jitter2k/provenance.json ] || \
  $B/idglow train export --run assets/idglow --stage sft --out runs/idglow-sft-jitter2k
[ -f $LEVER/final/identity_branch.safetensors ] || $B/idglow train sft --config configs/sft-jitter3k-init-idloss-sharp.yaml
[ -f $R/skin_faces-lever.png ] || $B/python benchmarks/skin_faces.py --run $LEVER --out $R/skin_faces-lever.png
[ -f $O/lever-group/synth-group.json ] || $B/idglow train sft-eval --run $LEVER --limit 100 \
  --benchmark data/cast/synth-group.jsonl --out $O/lever-group
[ -f $O/lever-age/synth-age.json ] || $B/idglow train sft-eval --run $LEVER --limit 100 --id-guidance 1.25 \
  --schedule age.kind=window --benchmark data/cast/synth-age.jsonl --out $O/lever-age
# the pooled check embedder nothing trained against (idloss-ensemble/check_judges.sh builds its judges folder)
J=runs/idloss-ensemble/judges-check-resnet
[ -f $J/judge.safetensors ] || bash benchmarks/results/idloss-ensemble/check_judges.sh
[ -f $O/check-resnet-lever/synth-group.json ] || $B/idglow train sft-eval --run $LEVER --limit 100 --judges $J \
  --benchmark data/cast/synth-group.jsonl --out $O/check-resnet-lever
mkdir -p $R/check-resnet-lever && cp $O/check-resnet-lever/synth-group.{json,scores.jsonl} $R/check-resnet-lever/
for b in group age; do
  mkdir -p $R/lever-$b && cp $O/lever-$b/synth-$b.json $O/lever-$b/synth-$b.scores.jsonl $R/lever-$b/
done
cp $LEVER/diagnostics.jsonl $R/lever-diagnostics.jsonl
$B/python $R/tables.py
