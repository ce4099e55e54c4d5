#!/usr/bin/env bash
# GPU check (issue 9) for a machine with one NVIDIA GPU: the full-size FLUX.1-dev transformer with the identity
# branch and LoRA of configs/flux-dev-sft.yaml, random weights (nothing downloaded), bf16: step time and peak
# memory of an SFT step (512^2 and 1024^2, N = 1 and 4 references), a DPO step, and a sampling step, with and
# without gradient checkpointing. Ends within ten minutes; a case that does not fit in time is recorded as skipped.
#
#   scripts/gpu_check.sh                 # results in runs/gpu-check/ (or $OUT when set)
#   BUDGET=300 scripts/gpu_check.sh --sizes 512 --refs 1
#
# Wheels under .whl/ (diffusers, peft, ...) are installed beside the machine's torch when they are missing
# (a GPU machine without registry access); otherwise the current environment is used as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir=${OUT:-runs/gpu-check}
mkdir -p "$out_dir"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
if ! "$py" -c "import diffusers, peft" 2>/dev/null && [ -d .whl ]; then
  site=/tmp/idglow-site
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    $(ls .whl/*.whl | grep -v transformers-)
  export PYTHONPATH=$site
  if ! "$py" -c "import peft, diffusers; from diffusers import FluxTransformer2DModel" 2>/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/transformers-*.whl
  fi
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; \
  "$py" -c "import torch, diffusers, peft, transformers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'peft', peft.__version__, 'transformers', transformers.__version__)"; } \
  | tee "$out_dir/environment.txt"
timeout "${BUDGET:-560}" "$py" benchmarks/flux_step.py --budget "${CASE_BUDGET:-400}" --json "$out_dir/flux_step.json" "$@" \
  2>&1 | tee "$out_dir/flux_step.log"
