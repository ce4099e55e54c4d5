#!/usr/bin/env bash
# A dry run of configs/accelerate/multinode.yaml on one machine: two "machines" (machine_rank 0 and 1, one CPU process
# each) meet at 127.0.0.1 and train the tiny SFT recipe with FSDP2 over gloo, then resume it, exactly as two nodes
# would. Needs a cast and a base folder (e.g. the test fixtures', or `idglow synth build` + assets/base).
#   scripts/multinode_dry_run.sh CAST_DIR BASE_DIR OUT_DIR
set -euo pipefail
cast=${1:?cast folder}; base=${2:?base folder}; out=${3:?run folder}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
port=$((29500 + RANDOM % 1000))
node() {  # $1 = machine rank, $2 = steps
  "$python" -m accelerate.commands.launch --config_file "$root/configs/accelerate/multinode.yaml" \
    --num_machines 2 --num_processes 2 --machine_rank "$1" --main_process_ip 127.0.0.1 --main_process_port "$port" \
    --mixed_precision no \
    -m idglow train sft --config "$root/configs/tiny-sft.yaml" --out "$out" --base "$base" \
    --data.manifests "[$cast/sft-group-train.jsonl]" --diagnostics.manifests "[$cast/sft-group-train.jsonl]" \
    --diagnostics.every 0 --optim.steps "$2"
}
for steps in 2 4; do  # train 2 steps, then resume to 4: both nodes each time
  node 1 "$steps" > "$out.node1.log" 2>&1 &
  node 0 "$steps" 2>&1 | tee "$out.node0.log" | grep -E "across|resumed|done:" || true
  wait $! || { echo "machine 1 failed:"; tail -20 "$out.node1.log"; exit 1; }
done
test -f "$out/final/identity_branch.safetensors"
echo "multi-node dry run: OK ($out)"
