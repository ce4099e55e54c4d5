"""Issue 19, exploratory: results.md for the identity loss switched off at low sigma (criteria.md, chain.sh).
The lever against its baseline at equal budget, on the chosen records (noise seed 0, one training seed each), paired
over records; and the references' effect on the held-out flow loss by sigma. Re-run: python tables.py"""

import json
from pathlib import Path

from idglow.eval.pooling import difference_text, estimate_text, folder_difference

HERE = Path(__file__).parent
KEYS = {"synth-group": ("facesim_norm", "identification", "count_accuracy", "leakage_rate"),
        "synth-age": ("facesim_norm", "identification", "child_rate", "mini_adult_rate")}
SAMPLERS = {"synth-group": "guidance 1", "synth-age": "guidance 1.25, the age window"}
SIGMAS = ("0.05", "0.15", "0.25", "0.35", "0.55", "0.75")


def reference_effect(who: str) -> dict[str, float]:
    """Held-out flow loss with the true references minus without any, by sigma, at the run's last diagnostic step
    (positive: the references make the prediction worse)."""
    last = [json.loads(line) for line in (HERE / f"{who}-diagnostics.jsonl").read_text().splitlines()][-1]
    return {s: last[f"heldout_true_sigma_{s}"] - last[f"heldout_none_sigma_{s}"] for s in SIGMAS} | {"step": last["step"]}


def main() -> None:
    lines = ["The identity loss off below sigma 0.3 (`configs/sft-jitter3k-init-idloss-high.yaml`, the lever) against "
             "the same 1,000 steps with it on at every sigma (`runs/sft-jitter3k-init`, the baseline): SFT only, 100 "
             "chosen records, noise seed 0, **one training seed each**; 95% bootstrap intervals, paired over records. "
             "Criteria: `criteria.md`. Written by `tables.py`.\n"]
    diffs = {}
    for bench, keys in KEYS.items():
        short = bench.split("-")[1]
        mine, theirs = HERE / f"lever-{short}", HERE / f"baseline-{short}"
        rows = {who: json.loads((HERE / f"{who}-{short}" / f"{bench}.json").read_text()) for who in ("baseline", "lever")}
        diffs[bench] = {k: folder_difference([mine], [theirs], bench, k) for k in (*keys, "frechet_judge")}
        lines += [f"### {bench}, {SAMPLERS[bench]}\n", "| | " + " | ".join(keys) + " | frechet_judge |",
                  "|---|" + "---|" * (len(keys) + 1)]
        for who, r in rows.items():
            lines.append(f"| {who} | " + " | ".join(estimate_text(r, k) for k in keys) + f" | {r['frechet_judge']:.2f} |")
        lines += ["| lever minus baseline | " + " | ".join(difference_text(diffs[bench][k]) for k in (*keys, "frechet_judge"))
                  + " |", ""]
    effects = {who: reference_effect(who) for who in ("baseline", "lever")}
    lines += ["### The references' effect on the held-out flow loss (true minus none, x1000; + = they hurt)\n",
              "| run (step) | " + " | ".join(f"sigma {s}" for s in SIGMAS) + " |", "|---|" + "---|" * len(SIGMAS)]
    for who, e in effects.items():
        lines.append(f"| {who} ({e['step']}) | " + " | ".join(f"{1000 * e[s]:+.2f}" for s in SIGMAS) + " |")
    close = diffs["synth-group"]["facesim_norm"]["difference"] >= -0.02
    halved = effects["lever"]["0.05"] < effects["baseline"]["0.05"] / 2
    lines += ["", f"Criteria: group FaceSim/mu within 0.02 of the baseline: {'held' if close else 'failed'}; the "
              f"references' penalty at sigma 0.05 under half the baseline's: {'held' if halved else 'failed'}. "
              f"**{'Worth a DPO chain' if close and halved else 'Not pursued'}.**",
              "", "Faces: `skin_faces-baseline.png`, `skin_faces-lever.png` (`benchmarks/skin_faces.py`)."]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
