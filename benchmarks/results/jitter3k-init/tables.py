"""Issue 19: benchmarks/results/jitter3k-init/results.md from the evaluations chain.sh kept here (unseen records, noise
seeds 0 and 1000 pooled, one training seed): each evaluation pooled, then paired against the shipped model at its own
sampler and at the same guidance, and against the lost model this one rebuilds. Re-run: python tables.py"""

import json
from pathlib import Path

from idglow.eval.pooling import difference_text, estimate_text, folder_difference, pooled_summary, read_scores

HERE = Path(__file__).parent
RESULTS = HERE.parent
SEEDS = (0, 1000)
KEYS = {"synth-group": ("facesim_norm", "identification", "count_accuracy", "leakage_rate"),
        "synth-age": ("facesim_norm", "identification", "child_rate", "mini_adult_rate")}
SHIPPED = {"synth-group": "sampler_confirm/synth-group", "synth-age": "sampler_confirm/synth-age"}
SHIPPED_G125 = "dpo-scale/scale1.5/sampler_confirm/synth-group"  # the shipped weights, groups at guidance 1.25
LOST = "longest-init-jitter/jitter3k-age400/sampler_confirm"  # the lost model: groups 1.25, age 1.25 with the window
ROWS = [  # (folder here, benchmark, what it is, [(what it is paired against, folder under benchmarks/results)])
    ("scale1-group-g1.25", "synth-group", "DPO scale 1, guidance 1.25",
     [("shipped, guidance 1 (its sampler)", SHIPPED["synth-group"]), ("shipped, guidance 1.25", SHIPPED_G125),
      ("the lost run, same sampler", f"{LOST}/synth-group")]),
    ("dpo-seed1-group-g1.25", "synth-group", "DPO trained with seed 1 (`dpo_seed.sh`), guidance 1.25",
     [("the same model's DPO with seed 0 (the row above)", "jitter3k-init/scale1-group-g1.25"),
      ("shipped, guidance 1 (its sampler)", SHIPPED["synth-group"])]),
    ("scale1-group-g1", "synth-group", "DPO scale 1, guidance 1", [("shipped, guidance 1 (its sampler)", SHIPPED["synth-group"])]),
    ("scale1.5-group-g1.25", "synth-group", "DPO scale 1.5, guidance 1.25",
     [("shipped, guidance 1 (its sampler)", SHIPPED["synth-group"]), ("shipped, guidance 1.25", SHIPPED_G125)]),
    ("scale2-age-g1.25-window", "synth-age", "DPO scale 2, guidance 1.25, window",
     [("shipped (its sampler, the same)", SHIPPED["synth-age"]), ("the lost run (scale 1), same sampler", f"{LOST}/synth-age")]),
    ("scale1.5-age-g1.25-window", "synth-age", "DPO scale 1.5, guidance 1.25, window",
     [("shipped (its sampler, the same)", SHIPPED["synth-age"]), ("the lost run (scale 1), same sampler", f"{LOST}/synth-age")]),
]


def folders(name: str) -> list[Path]:
    return [Path(f"{name}-seed{seed}") for seed in SEEDS]


def main() -> None:
    lines = ["The rebuilt 3,000-step model (`chain.sh`), unseen records (the 100 per benchmark `--limit 100` leaves out), "
             "noise seeds 0 and 1000 pooled, **one training seed**; 95% bootstrap intervals over records, paired where "
             "two models are compared (same records and noise seeds); judge Fréchet: the mean of the seeds' differences. "
             "Criteria fixed before scoring: `criteria.md`. Written by `tables.py`.\n"]
    for name, bench, label, against in ROWS:
        mine = [HERE / f for f in folders(name)]
        if not all((f / f"{bench}.scores.jsonl").is_file() for f in mine):
            lines.append(f"- {label}, {bench}: not scored yet\n")
            continue
        mu = json.loads((mine[0] / f"{bench}.json").read_text())["mu_real"]
        pooled = pooled_summary([read_scores(f, bench) for f in mine], mu)
        cells = [estimate_text(pooled, k) for k in KEYS[bench]]
        lines += [f"### {bench}, {label}\n", "| | " + " | ".join(KEYS[bench]) + " | frechet_judge |",
                  "|---|" + "---|" * (len(KEYS[bench]) + 1), "| this model | " + " | ".join(cells) + " | – |"]
        for other_label, other in against:
            theirs = [RESULTS / f for f in folders(other)]
            diffs = [difference_text(folder_difference(mine, theirs, bench, k)) for k in (*KEYS[bench], "frechet_judge")]
            lines.append(f"| minus {other_label} | " + " | ".join(diffs) + " |")
        lines.append("")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
