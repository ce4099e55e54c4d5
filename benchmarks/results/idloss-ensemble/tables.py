"""Issue 19, exploratory: results.md for the identity loss averaged over the encoder and `encoder_spatial`
(criteria.md, chain.sh). The lever against its baseline at equal budget (the baseline's scores are idloss-high's), on
the chosen records (noise seed 0, one training seed each), paired over records; the references' effect on the held-out
flow loss by sigma; and, where probes.sh ran, the factor probes on both runs' group faces. Re-run: python tables.py"""

import json
from pathlib import Path

from idglow.eval.lever_tables import PROBED_FACTORS, lever_benchmark_tables

HERE = Path(__file__).parent
BASELINE = HERE.parent / "idloss-high"  # runs/sft-jitter3k-init, scored by idloss-high/chain.sh


def probe_lines() -> list[str]:
    """Factor probes (judge features) on each run's synth-group faces from `probes.sh`, beside the true renders."""
    found = {who: HERE / f"cap-{who}.json" for who in ("baseline", "lever")}
    if not all(p.is_file() for p in found.values()):
        return []
    acc = {who: json.loads(p.read_text())["probes"]["accuracy"] for who, p in found.items()}
    columns = {"true renders": acc["lever"]["synth-group/truth"], "baseline": acc["baseline"]["synth-group/run"],
               "lever": acc["lever"]["synth-group/run"]}
    lines = ["", "### Which factors the group faces carry (probe accuracy on judge features; `probes.sh`)\n",
             "| factor | majority class | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for name in PROBED_FACTORS:
        lines.append(f"| {name} | {columns['lever'][name]['chance']:.2f} | "
                     + " | ".join(f"{c[name]['accuracy']:.2f}" for c in columns.values()) + " |")
    return lines


def main() -> None:
    lines = ["The identity loss averaged over the `encoder` and `encoder_spatial` (`configs/sft-jitter3k-init-ensemble.yaml`, "
             "the lever) against the same 1,000 steps with the `encoder` alone (`runs/sft-jitter3k-init`, the baseline; "
             "its scores are `../idloss-high/baseline-*`): SFT only, 100 chosen records, noise seed 0, **one training "
             "seed each**; 95% bootstrap intervals, paired over records. Criteria: `criteria.md`. Written by `tables.py`.\n"]
    tables, diffs, _ = lever_benchmark_tables(HERE, BASELINE)
    lines += tables
    lines += probe_lines()
    group, age = diffs["synth-group"], diffs["synth-age"]
    checks = {"group FaceSim/mu at least +0.01 with the interval above 0":
              group["facesim_norm"]["difference"] >= 0.01 and group["facesim_norm"]["interval"][0] > 0,
              "count accuracy no more than 0.02 lower": group["count_accuracy"]["difference"] >= -0.02,
              "age FaceSim/mu no more than 0.01 lower": age["facesim_norm"]["difference"] >= -0.01,
              "child rate no more than 0.02 lower": age["child_rate"]["difference"] >= -0.02}
    lines += ["", "Criteria: " + "; ".join(f"{name}: {'held' if ok else 'failed'}" for name, ok in checks.items())
              + f". **{'Worth a DPO chain' if all(checks.values()) else 'Not pursued'}.**",
              "", "Faces: `../idloss-high/skin_faces-baseline.png`, `skin_faces-lever.png` (`benchmarks/skin_faces.py`)."]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
