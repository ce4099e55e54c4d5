#!/usr/bin/env bash
# Issue 19 on one GPU: the evaluations of `make idglow-model` for an SFT and a DPO run, a candidate export with the
# sampler those scores recommend, and that sampler's confirmation on records it was not chosen on
# (benchmarks/sampler_confirm.py), inside a wall-clock budget, most useful first. Each finished evaluation is copied
# under $OUT/evals/ at once, so what ran before a timeout comes back. Sampling runs on the GPU (bf16 autocast, the
# pipeline's `auto` precision); the judges score on the CPU; the noise is the CPU's, as in a CPU evaluation.
#
#   BUDGET=420 SFT_RUN=runs/sft-constant-longer DPO_RUN=runs/dpo-constant-longer \
#     SCHEDULE="group.kind=linear_decay age.kind=window" scripts/gpu_idglow_eval.sh
#
# SCHEDULE: the gate overrides of the "paper-gates" evaluations (here: the paper's gates for a model trained with
# constant gates). Needs the run folders' final/ (carry them) and, where `import idglow` fails,
# what scripts/gpu_env.sh needs (.gpu/, written by `python scripts/gpu_bundle.py`).
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${BUDGET:-420}
sft_run=${SFT_RUN:-runs/sft-constant-longer}
dpo_run=${DPO_RUN:-runs/dpo-constant-longer}
candidate=${CANDIDATE:-runs/idglow-candidate}
device=${DEVICE:-cuda}
limit=${LIMIT:-100}  # the records each evaluation scores (and the sampler is chosen on); the confirmation scores the rest
read -r -a schedule <<< "${SCHEDULE:-group.kind=linear_decay age.kind=window}"
gates=()
for item in "${schedule[@]}"; do gates+=(--schedule "$item"); done
source scripts/gpu_env.sh || exit 1

reserve=${RESERVE:-25}
evaluate() {  # RUN OUT [sft-eval options]: one evaluation, skipped when the budget is spent, copied under $out_dir
  local run=$1 out=$2
  shift 2
  if [ "$(left)" -lt "$reserve" ]; then log "skipped (budget): $out"; return 0; fi
  log "sft-eval $run -> $out $*"
  "$py" -m idglow train sft-eval --run "$run" --limit "$limit" --device "$device" --out "$out" "$@" 2>&1 \
    | grep -E '"facesim_norm"|"count_accuracy"|"child_rate"|Error|error' | tr -s ' ' | paste -sd' '
  mkdir -p "$out_dir/evals/$(dirname "$out")" && cp -r "$out" "$out_dir/evals/$out"
}

group=(--benchmark data/cast/synth-group.jsonl)
age=(--benchmark data/cast/synth-age.jsonl)
# `make idglow-model`'s evaluations of the DPO model (the candidates of its sampler), then the SFT model's
evaluate "$dpo_run" "$dpo_run/eval" # the gates it was trained with
for g in 1.25 1.5 2; do evaluate "$dpo_run" "$dpo_run/eval-g$g-group" --id-guidance "$g" "${group[@]}"; done
evaluate "$dpo_run" "$dpo_run/eval-paper-gates" "${gates[@]}"
evaluate "$dpo_run" "$dpo_run/eval-paper-gates-g1.5" "${gates[@]}" --id-guidance 1.5
evaluate "$dpo_run" "$dpo_run/eval-paper-gates-g1.5-group.lambda_min-0.3" "${gates[@]}" --id-guidance 1.5 \
  --schedule group.lambda_min=0.3 "${group[@]}"
for g in 1.75 2; do evaluate "$dpo_run" "$dpo_run/eval-g$g-age.kind-window" --id-guidance "$g" --schedule age.kind=window "${age[@]}"; done
evaluate "$sft_run" "$sft_run/eval" # the gates it was trained with

if [ "$(left)" -gt $((reserve + 20)) ]; then
  log "export $dpo_run -> $candidate"
  scores=()
  for folder in "$dpo_run"/eval*; do scores+=(--scores "$folder"); done
  "$py" -m idglow train export --run "$dpo_run" --out "$candidate" "${scores[@]}" --gallery data/cast \
    --train-command-line "scripts/gpu_idglow_model.sh ($sft_run, $dpo_run)" > /dev/null || exit 1
  cp "$candidate/sampler.json" "$out_dir/sampler.json" && cat "$out_dir/sampler.json"
  confirm="$out_dir/sampler_confirm"
  timeout $(( $(left) - 5 )) "$py" benchmarks/sampler_confirm.py --run "$candidate" --limit "$limit" --device "$device" --out "$confirm" 2>&1 \
    | grep -v "^Loading weights" | tail -12
fi
evaluate "$sft_run" "$sft_run/eval-paper-gates" "${gates[@]}"
log "done"
