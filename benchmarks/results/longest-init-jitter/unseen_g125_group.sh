#!/bin/bash
# Issue 19: is the unseen-group gain of the 377-pair model (chain.sh 3k-age400: 0.694 at guidance 1.25, the rule's pick)
# over the 187-pair one (chain.sh 3k: 0.674 at guidance 1, its pick) the pairs' or the guidance's? Both that model and
# the shipped one sampled at guidance 1.25 on the same unseen records and noise seeds as their confirmations
# (sampler_confirm.py's sft-eval call), then paired against them. About 15 minutes here; re-running skips what exists.
set -ex
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
R=benchmarks/results/longest-init-jitter; O=runs/unseen-g1.25-group
for run in runs/dpo-constant-longest-init-jitter3k runs/idglow-longest-init-jitter2k; do  # 2k: the weights shipped then
  for s in 0 1000; do
    o=$O/$(basename $run)-seed$s
    [ -f $o/synth-group.json ] || .venv/bin/idglow train sft-eval --run $run --benchmark data/cast/synth-group.jsonl \
      --limit 100 --complement --id-guidance 1.25 --seed $s --out $o
  done
done
mkdir -p $R/unseen-g1.25-group
for o in $O/*-seed*; do mkdir -p $R/unseen-g1.25-group/$(basename $o) && cp $o/synth-group.{json,scores.jsonl} $R/unseen-g1.25-group/$(basename $o)/; done
.venv/bin/python - $R <<'PY' | tee $R/unseen-g1.25-group/results.md
import sys
from idglow.eval.pooling import difference_text, folder_difference
R = sys.argv[1]
seeds = (0, 1000)
def f(folder): return [f"{R}/{folder}-seed{s}" for s in seeds]
pairs = [("3,000 steps + 187 pairs, guidance 1.25", "unseen-g1.25-group/dpo-constant-longest-init-jitter3k",
          "the same at guidance 1 (its pick)", "jitter3k/sampler_confirm/synth-group"),
         ("3,000 steps + 377 pairs, 400 DPO steps, guidance 1.25 (its pick)", "jitter3k-age400/sampler_confirm/synth-group",
          "3,000 steps + 187 pairs, guidance 1.25", "unseen-g1.25-group/dpo-constant-longest-init-jitter3k"),
         ("shipped (2,000 steps), guidance 1.25", "unseen-g1.25-group/idglow-longest-init-jitter2k",
          "the same at guidance 1 (its pick)", "../sampler_confirm-jitter2k/synth-group"),
         ("3,000 steps + 377 pairs, 400 DPO steps, guidance 1.25", "jitter3k-age400/sampler_confirm/synth-group",
          "shipped, guidance 1.25", "unseen-g1.25-group/idglow-longest-init-jitter2k")]
print("Unseen synth-group records (the 100 `--limit 100` leaves out), noise seeds 0 and 1000 pooled, one training seed; "
      "paired 95% bootstrap intervals.\n\n| model | minus | FaceSim/mu | identification | count accuracy |\n|---|---|---|---|---|")
for a_name, a, b_name, b in pairs:
    cells = [difference_text(folder_difference(f(a), f(b), "synth-group", k)) for k in ("facesim_norm", "identification", "count_accuracy")]
    print(f"| {a_name} | {b_name} | " + " | ".join(cells) + " |")
PY
