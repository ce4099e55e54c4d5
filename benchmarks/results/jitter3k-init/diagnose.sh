#!/bin/bash
# Issue 19, after chain.sh's unseen group score came out below the shipped model's (so exploratory): where the rebuild
# parts from the lost run, on the 100 chosen records (noise seed 0) that the lost run and the shipped model were scored
# on (their summaries are committed; their per-record scores were not kept, so these comparisons are not paired):
# the rebuilt SFT stage at the shipped group sampler (guidance 1) against the shipped model's SFT stage (DPO scale 0,
# benchmarks/results/dpo-scale/scale0), and the rebuilt DPO model at guidance 1.25 against the lost one
# (benchmarks/results/longest-init-jitter/jitter3k-age400/eval-g1.25-group.json). About 5 minutes here.
set -ex
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
B=.venv/bin; R=benchmarks/results/jitter3k-init/chosen
[ -f runs/idglow-jitter3k-init/provenance.json ] || { echo "run chain.sh first" >&2; exit 1; }
GROUP="--benchmark data/cast/synth-group.jsonl --limit 100"
[ -f runs/sft-jitter3k-init/eval-group/synth-group.json ] || $B/idglow train sft-eval --run runs/sft-jitter3k-init $GROUP --out runs/sft-jitter3k-init/eval-group
[ -f runs/idglow-jitter3k-init/eval-g1.25-group/synth-group.json ] || $B/idglow train sft-eval --run runs/idglow-jitter3k-init $GROUP \
  --id-guidance 1.25 --out runs/idglow-jitter3k-init/eval-g1.25-group
mkdir -p $R && cp runs/sft-jitter3k-init/eval-group/synth-group.json $R/sft-stage-group.json &&
  cp runs/idglow-jitter3k-init/eval-g1.25-group/synth-group.json $R/dpo-g1.25-group.json
$B/python - <<'PY' | tee $R/results.md
import json
def row(name, path):
    d = json.load(open(path)); i = d.get("intervals", {})
    cell = lambda k: f"{d[k]:.3f}" + (" [{:.3f}, {:.3f}]".format(*i[k]) if k in i else "")
    return f"| {name} | {cell('facesim_norm')} | {d['identification']:.3f} | {cell('count_accuracy')} | {d['frechet_judge']:.2f} |"
R = "benchmarks/results"
print("100 chosen records of synth-group, noise seed 0, one training seed each; 95% bootstrap intervals over records; "
      "not paired (per-record scores of the older rows were not kept). Written by `diagnose.sh`.\n")
print("| model, sampler | FaceSim/mu | identified | count accuracy | judge Fréchet |\n|---|---|---|---|---|")
print(row("rebuilt SFT stage (3,000 jittered steps, optimizer restarted at 2,000), guidance 1", f"{R}/jitter3k-init/chosen/sft-stage-group.json"))
print(row("shipped model's SFT stage (2,000 jittered steps), guidance 1", f"{R}/dpo-scale/scale0/synth-group.json"))
print(row("rebuilt DPO model (382 pairs, 400 steps), guidance 1.25", f"{R}/jitter3k-init/chosen/dpo-g1.25-group.json"))
print(row("lost DPO model (377 pairs, 400 steps), guidance 1.25", f"{R}/longest-init-jitter/jitter3k-age400/eval-g1.25-group.json"))
PY
