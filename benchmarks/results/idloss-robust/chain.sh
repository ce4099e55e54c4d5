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
[ -f $R/skin_faces-lever.png ] || $B/python benchmarks/skin_faces.py --run $LEVER --out $R/skin_faces-lever.png
[ -f $O/lever-group/synth-group.json ] || $B/idglow train sft-eval --run $LEVER --limit 100 \
  --benchmark data/cast/synth-group.jsonl --out $O/lever-group
[ -f $O/lever-age/synth-age.json ] || $B/idglow train sft-eval --run $LEVER --limit 100 --id-guidance 1.25 \
  --schedule age.kind=window --benchmark data/cast/synth-age.jsonl --out $O/lever-age
for b in group age; do
  mkdir -p $R/lever-$b && cp $O/lever-$b/synth-$b.json $O/lever-$b/synth-$b.scores.jsonl $R/lever-$b/
done
cp $LEVER/diagnostics.jsonl $R/lever-diagnostics.jsonl
# the pooled check embedder nothing trained against: the same command as idloss-ensemble/check_judges.sh's `resnet`
J=runs/idloss-ensemble/judges-check-resnet
if [ ! -f $J/judge.safetensors ]; then
  rm -rf $J.tmp && mkdir -p $J.tmp && cp assets/judges/*.safetensors assets/judges/*.json $J.tmp/
  $B/idglow synth train-embedder --name check --arch resnet --seed 99 --out $J.tmp
  mv $J.tmp/check.safetensors $J.tmp/judge.safetensors && mv $J.tmp/check.json $J.tmp/judge.json && mv $J.tmp $J
fi
[ -f $O/check-resnet-lever/synth-group.json ] || $B/idglow train sft-eval --run $LEVER --limit 100 --judges $J \
  --benchmark data/cast/synth-group.jsonl --out $O/check-resnet-lever
mkdir -p $R/check-resnet-lever && cp $O/check-resnet-lever/synth-group.{json,scores.jsonl} $R/check-resnet-lever/
# factor probes at sigma 1, as idloss-ensemble/probes.sh ran them for the baseline
[ -f $R/cap-lever.json ] || $B/python benchmarks/identity_cap.py --cast data/cast --run $LEVER --id-guidance 1 \
  --limit 100 --steps 20 --sigmas 1.0 --out $O/cap-lever --json $R/cap-lever.json
$B/python $R/tables.py
