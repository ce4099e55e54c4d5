#!/usr/bin/env bash
# Issue 19, exploratory: the close-up cast's stage 1b (criteria-stage1b.md): the close base continued to 7,078 steps,
# then the stage-1 cap on the close cast. Resumable. About 4 hours of training on 2 CPU cores, then 15 minutes.
#   bash benchmarks/results/close-cast/chain-stage1b.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} R=benchmarks/results/close-cast SRC=runs/synth-base-close RUN=runs/synth-base-close-long
if [ ! -d $RUN/checkpoints ]; then  # start from the close base's final checkpoint: the same run, trained longer
  rm -rf $RUN.tmp && mkdir -p $RUN.tmp/checkpoints
  cp -r $SRC/checkpoints/step-0003539 $SRC/checkpoints/latest.json $RUN.tmp/checkpoints/
  cp $SRC/config.json $SRC/log.jsonl $RUN.tmp/ && mv $RUN.tmp $RUN
fi
[ -f $RUN/final/transformer/config.json ] || $B/idglow train base --config configs/synth-base-close-long.yaml
[ -f $R/cap-close-long.json ] || $B/python benchmarks/identity_cap.py --cast data/cast-close --base $RUN \
  --judges assets/judges-close --limit 100 --steps 20 --sigmas 0.3 0.5 0.7 1.0 --out runs/close-cast/cap-close-long \
  --json $R/cap-close-long.json
$B/python $R/compare.py --close $R/cap-close-long.json | tee $R/reading-long.md
