"""Issue 19, exploratory: dpo_results.md from the evaluations dpo_chain.sh kept here (unseen records, noise seeds 0 and
1000 pooled, one training seed): the ensemble-loss model with the shipped DPO recipe at scale 1.5, paired against the
shipped model at the same samplers, and the criteria of criteria.md's "If the DPO chain runs". Re-run: python dpo_tables.py"""

import json
from pathlib import Path

from idglow.eval.pooling import difference_text, estimate_text, folder_difference, pooled_summary, read_scores

HERE = Path(__file__).parent
RESULTS = HERE.parent
SEEDS = (0, 1000)
KEYS = {"synth-group": ("facesim_norm", "identification", "count_accuracy", "leakage_rate"),
        "synth-age": ("facesim_norm", "identification", "child_rate", "mini_adult_rate")}
ROWS = {"synth-group": ("dpo1.5-group-g1", "guidance 1, trained gate"),
        "synth-age": ("dpo1.5-age-g1.25-window", "guidance 1.25, the age window")}


def folders(root: Path, name: str) -> list[Path]:
    return [root / f"{name}-seed{seed}" for seed in SEEDS]


def main() -> None:
    lines = ["The ensemble-loss SFT (`configs/sft-jitter3k-init-ensemble.yaml`) with the shipped DPO recipe at scale 1.5 "
             "(`dpo_chain.sh`), unseen records (the 100 per benchmark `--limit 100` leaves out), noise seeds 0 and 1000 "
             "pooled, **one training seed**; 95% bootstrap intervals over records, paired against the shipped model at "
             "the same sampler (`../sampler_confirm`); judge Fréchet: the mean of the seeds' differences. Criteria: "
             "`criteria.md`. Written by `dpo_tables.py`.\n"]
    diffs = {}
    for bench, (name, sampler) in ROWS.items():
        mine, theirs = folders(HERE, name), folders(RESULTS / "sampler_confirm", bench)
        if not all((f / f"{bench}.scores.jsonl").is_file() for f in mine):
            lines.append(f"- {bench}: not scored yet\n")
            continue
        mu = json.loads((mine[0] / f"{bench}.json").read_text())["mu_real"]
        pooled = pooled_summary([read_scores(f, bench) for f in mine], mu)
        diffs[bench] = {k: folder_difference(mine, theirs, bench, k) for k in (*KEYS[bench], "frechet_judge")}
        lines += [f"### {bench}, {sampler}\n", "| | " + " | ".join(KEYS[bench]) + " | frechet_judge |",
                  "|---|" + "---|" * (len(KEYS[bench]) + 1),
                  "| this model | " + " | ".join(estimate_text(pooled, k) for k in KEYS[bench]) + " | – |",
                  "| minus shipped | " + " | ".join(difference_text(diffs[bench][k]) for k in (*KEYS[bench], "frechet_judge"))
                  + " |", ""]
        diffs[bench]["pooled"] = pooled
    if len(diffs) == 2:
        group, age = diffs["synth-group"], diffs["synth-age"]
        checks = {
            "groups above the shipped model beyond noise": group["facesim_norm"]["interval"][0] > 0,
            "count accuracy >= 0.9 at the lower end": group["pooled"]["intervals"]["count_accuracy"][0] >= 0.9,
            "judge Fréchet within +1": group["frechet_judge"]["difference"] <= 1,
            "child rate not below beyond noise": age["child_rate"]["interval"][1] >= 0,
            "mini-adult rate not above beyond noise": age["mini_adult_rate"]["interval"][0] <= 0,
            "age FaceSim/mu >= 0.6": age["pooled"]["facesim_norm"] >= 0.6}
        lines += ["Criteria: " + "; ".join(f"{k}: {'held' if ok else 'failed'}" for k, ok in checks.items())
                  + f". **{'A candidate to ship (confirm on data/cast-b1)' if all(checks.values()) else 'Not shipped'}.**"]
    (HERE / "dpo_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
