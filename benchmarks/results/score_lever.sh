# Sourced by idloss-off/chain.sh, idloss-robust/chain.sh, map-tokens/chain.sh and map-ensemble/chain.sh (which set
# B, O, R and LEVER): `score_lever` scores an SFT lever run as its baseline runs/sft-jitter3k-init was scored
# (idloss-high/chain.sh, idloss-ensemble/check_judges.sh and probes.sh), skipping what exists: its faces first, then
# 100 chosen records of each benchmark (groups at guidance 1; age at 1.25 with the window), groups under the pooled
# check embedder, the factor probes at sigma 1, tables.py.
score_lever() {
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
  local J=runs/idloss-ensemble/judges-check-resnet
  if [ ! -f $J/judge.safetensors ]; then
    rm -rf $J.tmp && mkdir -p $J.tmp && cp assets/judges/*.safetensors assets/judges/*.json $J.tmp/
    $B/idglow synth train-embedder --name check --arch resnet --seed 99 --out $J.tmp
    mv $J.tmp/check.safetensors $J.tmp/judge.safetensors && mv $J.tmp/check.json $J.tmp/judge.json && mv $J.tmp $J
  fi
  [ -f $O/check-resnet-lever/synth-group.json ] || $B/idglow train sft-eval --run $LEVER --limit 100 --judges $J \
    --benchmark data/cast/synth-group.jsonl --out $O/check-resnet-lever
  mkdir -p $R/check-resnet-lever && cp $O/check-resnet-lever/synth-group.{json,scores.jsonl} $R/check-resnet-lever/
  [ -f $R/cap-lever.json ] || $B/python benchmarks/identity_cap.py --cast data/cast --run $LEVER --id-guidance 1 \
    --limit 100 --steps 20 --sigmas 1.0 --out $O/cap-lever --json $R/cap-lever.json
  $B/python $R/tables.py
}

# `lever_chain CONFIG`: the whole chain of a lever trained from the shipped SFT stage: that stage peeled off
# assets/idglow when missing, the lever's SFT run (resumed from its checkpoints), then `score_lever`.
lever_chain() {
  [ -f runs/idglow-sft-jitter2k/provenance.json ] || \
    $B/idglow train export --run assets/idglow --stage sft --out runs/idglow-sft-jitter2k
  [ -f $LEVER/final/identity_branch.safetensors ] || $B/idglow train sft --config "$1"
  score_lever
}
