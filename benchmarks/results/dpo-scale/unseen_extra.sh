#!/bin/bash
# Issue 19, after the DPO-scaled model's confirmation (confirm.sh 1.5) was read, so exploratory, not a confirmation:
# where its unseen-group Fréchet rise comes from (its rule-picked guidance 1.25, or the scale), and what scale 2 does to
# unseen children. Same unseen records and noise seeds as sampler_confirm.py's: the scale-1.5 model at guidance 1 on
# groups, the scale-2 model at the shipped age sampler (guidance 1.25, the paper's window); then paired against the
# shipped model at equal samplers (its guidance-1.25 group folders come from
# benchmarks/results/longest-init-jitter/unseen_g125_group.sh). About 12 minutes here; re-running skips what exists.
set -ex
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
R=benchmarks/results/dpo-scale; O=runs/unseen-dpo-scale
[ -f runs/idglow-dpo2/provenance.json ] || benchmarks/results/dpo-scale/chain.sh 2
for s in 0 1000; do
  o=$O/scale1.5-group-g1-seed$s
  [ -f $o/synth-group.json ] || .venv/bin/idglow train sft-eval --run runs/idglow-dpo1.5 --benchmark data/cast/synth-group.jsonl \
    --limit 100 --complement --seed $s --out $o
  o=$O/scale2-age-g1.25-window-seed$s
  [ -f $o/synth-age.json ] || .venv/bin/idglow train sft-eval --run runs/idglow-dpo2 --benchmark data/cast/synth-age.jsonl \
    --limit 100 --complement --id-guidance 1.25 --schedule age.kind=window --seed $s --out $o
done
mkdir -p $R/unseen-extra
for o in $O/*-seed*; do mkdir -p $R/unseen-extra/$(basename $o) && cp $o/synth-*.json $o/synth-*.scores.jsonl $R/unseen-extra/$(basename $o)/; done
.venv/bin/python - $R <<'PY' | tee $R/unseen-extra/results.md
import json, sys
from idglow.eval.pooling import difference_text, folder_difference, pooled_summary, read_scores
R = sys.argv[1]
def f(folder): return [f"{R}/{folder}-seed{s}" for s in (0, 1000)]
shipped_g125 = "../longest-init-jitter/unseen-g1.25-group/idglow-longest-init-jitter2k"
group = [("scale 1.5, guidance 1.25 (its pick)", "scale1.5/sampler_confirm/synth-group", "shipped, guidance 1.25", shipped_g125),
         ("scale 1.5, guidance 1", "unseen-extra/scale1.5-group-g1", "shipped, guidance 1 (its pick)", "../sampler_confirm-jitter2k/synth-group"),
         ("shipped, guidance 1.25", shipped_g125, "shipped, guidance 1 (its pick)", "../sampler_confirm-jitter2k/synth-group")]
print("Unseen records (the 100 `--limit 100` leaves out), noise seeds 0 and 1000 pooled, one training seed; paired 95% "
      "bootstrap intervals; Fréchet: the mean of the seeds' differences (set-level).\n\n"
      "| synth-group model | minus | FaceSim/mu | identification | count accuracy | judge Fréchet |\n|---|---|---|---|---|---|")
for a_name, a, b_name, b in group:
    cells = [difference_text(folder_difference(f(a), f(b), "synth-group", k), 2 if k == "frechet_judge" else 3)
             for k in ("facesim_norm", "identification", "count_accuracy", "frechet_judge")]
    print(f"| {a_name} | {b_name} | " + " | ".join(cells) + " |")
a, b = "unseen-extra/scale2-age-g1.25-window", "../sampler_confirm-jitter2k/synth-age"
mu = json.load(open(f"{f(a)[0]}/synth-age.json"))["mu_real"]
pooled = pooled_summary([read_scores(x, "synth-age") for x in f(a)], mu)
print("\n| synth-age, guidance 1.25, the paper's window | FaceSim/mu | identification | child rate | mini-adult rate | judge Fréchet |\n|---|---|---|---|---|---|")
keys = ("facesim_norm", "identification", "child_rate", "mini_adult_rate")
iv = lambda k: " [{:.3f}, {:.3f}]".format(*pooled["intervals"][k]) if k in pooled.get("intervals", {}) else ""
print("| scale 2 | " + " | ".join(f"{pooled[k]:.3f}{iv(k)}" for k in keys) + " | – |")
cells = [difference_text(folder_difference(f(a), f(b), "synth-age", k), 2 if k == "frechet_judge" else 3) for k in (*keys, "frechet_judge")]
print("| scale 2 minus shipped | " + " | ".join(cells) + " |")
PY
