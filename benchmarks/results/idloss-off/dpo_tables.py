"""Issue 19, exploratory: dpo_results.md from the evaluations dpo_chain.sh kept here (unseen records, noise seeds 0 and
1000 pooled, one training seed): the identity-loss-off SFT with the shipped DPO recipe at scale 1.5, paired against the
shipped model at the same samplers; its group faces' factor probes against the shipped model's (chosen records,
unpaired); and the criteria of criteria.md's "If the DPO chain runs". Re-run: python dpo_tables.py"""

import json
from pathlib import Path

from idglow.eval.lever_tables import probe_table
from idglow.eval.pooling import difference_text, estimate_text, folder_difference, pooled_summary, read_scores

HERE = Path(__file__).parent
RESULTS = HERE.parent
SEEDS = (0, 1000)
KEYS = {"synth-group": ("facesim_norm", "identification", "count_accuracy", "leakage_rate"),
        "synth-age": ("facesim_norm", "identification", "child_rate", "mini_adult_rate")}
ROWS = {"synth-group": ("dpo1.5-group-g1", "guidance 1, trained gate"),
        "synth-age": ("dpo1.5-age-g1.25-window", "guidance 1.25, the age window")}
FLOORS = {"synth-group": ("count_accuracy", 0.9, 0.6), "synth-age": ("child_rate", 0.85, 0.5)}


def folders(root: Path, name: str) -> list[Path]:
    return [root / f"{name}-seed{seed}" for seed in SEEDS]


def main() -> None:
    lines = ["The identity-loss-off SFT (`configs/sft-jitter3k-init-idloss-off.yaml`) with the shipped DPO recipe at scale "
             "1.5 (`dpo_chain.sh`), unseen records (the 100 per benchmark `--limit 100` leaves out), noise seeds 0 and "
             "1000 pooled, **one training seed**; 95% bootstrap intervals over records, paired against the shipped model "
             "at the same sampler (`../sampler_confirm`); judge Fréchet: the mean of the seeds' differences. Criteria: "
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
    light = None
    if (HERE / "cap-dpo.json").is_file():
        shipped = json.loads((RESULTS / "identity_cap_shipped.json").read_text())
        table, light = probe_table("Which factors the group faces carry (the judge's probes, chosen records, sigma 1, "
                                   "guidance 1; unpaired)",
                                   {"true renders": (shipped, "synth-group/truth"), "shipped model": (shipped, "synth-group/run"),
                                    "this model": (json.loads((HERE / "cap-dpo.json").read_text()), "synth-group/run")})
        lines += table + [""]
    if len(diffs) == 2 and light:
        group, age = diffs["synth-group"], diffs["synth-age"]
        bar = all(diffs[b]["pooled"]["intervals"]["facesim_norm"][0] >= fs
                  and diffs[b]["pooled"]["intervals"][floor][0] >= level for b, (floor, level, fs) in FLOORS.items())
        checks = {"the minimum bar at the lower ends": bar,
                  "group FaceSim/mu no more than 0.03 below the shipped model's": group["facesim_norm"]["difference"] >= -0.03,
                  "child rate not below beyond noise": age["child_rate"]["interval"][1] >= 0,
                  "light-tone skin probe at least 0.15 more exact than the shipped model's":
                      light["this model"]["exact"] >= light["shipped model"]["exact"] + 0.15}
        lines += ["Criteria read off these tables (the faces' criterion is judged in criteria.md): "
                  + "; ".join(f"{k}: {'held' if ok else 'failed'}" for k, ok in checks.items())
                  + f". **{'A candidate to ship (confirm on data/cast-b1)' if all(checks.values()) else 'Not a candidate'}.**"]
    (HERE / "dpo_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
