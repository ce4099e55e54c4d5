#!/usr/bin/env bash
# Issue 19, exploratory: the close-up cast's stage 1 (criteria.md): cast, judges, base model, and what each base
# model keeps (identity_cap on both casts, the default one on groups of 1-2 people). Resumable: the build and the
# judges are skipped when they exist, training resumes from its checkpoints, identity_cap skips the rows it has.
# On 2 CPU cores: build 50 s, judges 14 minutes, the default cast's cap about 8 minutes, the base model hours.
#   bash benchmarks/results/close-cast/chain.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=${B:-.venv/bin} R=benchmarks/results/close-cast
CLOSE=(--world.height 128 --world.max_people 2)
[ -f assets/judges-close/report.json ] || $B/idglow synth train-judges --out assets/judges-close "${CLOSE[@]}"
[ -f data/cast-close/build.json ] || \
  $B/idglow synth build --out data/cast-close "${CLOSE[@]}" --build.bench_per_size 100 --judges assets/judges-close
[ -f data/cast-close/synth-group.mu_real.json ] && \
  [ "$(cat data/cast-close/synth-group.mu_real.json | grep -c '"faces_detected": 300')" = 1 ] || \
  $B/idglow synth mu-real --data data/cast-close --judges assets/judges-close
CAP=(--limit 100 --steps 20 --sigmas 0.3 0.5 0.7 1.0)
[ -f $R/cap-default.json ] || $B/python benchmarks/identity_cap.py --cast data/cast --base assets/base \
  --max-people 2 "${CAP[@]}" --out runs/close-cast/cap-default --json $R/cap-default.json
[ -f runs/synth-base-close/final/transformer/config.json ] || \
  $B/idglow train base --config configs/synth-base-close.yaml
[ -f $R/cap-close.json ] || $B/python benchmarks/identity_cap.py --cast data/cast-close --base runs/synth-base-close \
  --judges assets/judges-close "${CAP[@]}" --out runs/close-cast/cap-close --json $R/cap-close.json
