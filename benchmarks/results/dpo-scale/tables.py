"""Issue 19: the chosen-record tables of the DPO-scaled models (README, "Scaling the DPO adapter") from the results
chain.sh and confirm.sh copied here and the shipped model's provenance. Prints markdown.

    python benchmarks/results/dpo-scale/tables.py > benchmarks/results/dpo-scale/results.md
"""

import json
import subprocess
from pathlib import Path

from idglow.eval.pooling import estimate_text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def shipped_scores() -> dict:
    """The scaled model's own scores: assets/idglow's while it holds that model (DPO weights 81d17d0ffb5fe9ea), else
    its provenance as git keeps it (commit 112193a)."""
    provenance = json.loads((ROOT / "assets" / "idglow" / "provenance.json").read_text())
    if provenance.get("source_weights") != "81d17d0ffb5fe9ea":
        shown = subprocess.run(["git", "show", "112193a:assets/idglow/provenance.json"], cwd=ROOT, check=True,
                               capture_output=True, text=True)
        provenance = json.loads(shown.stdout)
    return provenance["scores"]


SHIPPED = shipped_scores()
HEADER = ("| {} | group FaceSim/mu | group identified | group count acc | age FaceSim/mu | age identified | "
          "age child rate | age mini-adult rate |\n|---|---|---|---|---|---|---|---|")


def row(label: str, group: dict | None, age: dict | None) -> str:
    cells = [label]
    cells += [estimate_text(group, "facesim_norm"), f"{group['identification']:.3f}", estimate_text(group, "count_accuracy")] if group else ["–"] * 3
    cells += ([estimate_text(age, "facesim_norm"), f"{age['identification']:.3f}", estimate_text(age, "child_rate"),
               estimate_text(age, "mini_adult_rate")] if age else ["–"] * 4)
    return "| " + " | ".join(cells) + " |"


def load(name: str) -> dict:
    return json.loads((HERE / name).read_text())


def main() -> None:
    window = "synth-age, id_guidance {}, gate age.kind=window"
    print("100 chosen records per held-out benchmark (`train sft-eval --limit 100`), noise seed 0, one training seed; "
          "95% bootstrap intervals over records. Scale 1 is the shipped model (its scores from "
          "`assets/idglow/provenance.json`). Made by `chain.sh 0 1.5 2 3`, `AGE_G=\"1.25 1.5\" chain.sh 1.5`, "
          "`GROUP=0 AGE_G=1.5 chain.sh 2` and `confirm.sh 1.5`; `python tables.py > results.md`.\n")
    print("At the shipped model's samplers (groups: the trained sampler, guidance 1; age: guidance 1.25 with the "
          "paper's window):\n")
    print(HEADER.format("DPO scale"))
    print(row("0 (the SFT stage)", load("scale0/synth-group.json"), load("scale0/synth-age-g1.25-window.json")))
    print(row("1 (shipped)", SHIPPED["synth-group"], SHIPPED[window.format("1.25")]))
    for scale in ("1.5", "2", "3"):
        print(row(scale, load(f"scale{scale}/synth-group.json"), load(f"scale{scale}/synth-age-g1.25-window.json")))
    print("\nThe other candidate samplers (scale 1.5 under every sampler the shipped model was scored under):\n")
    print(HEADER.format("DPO scale, sampler"))
    print(row("1, age trained sampler (guidance 1, constant gates)", None, SHIPPED["synth-age"]))
    print(row("1.5, age trained sampler", None, load("scale1.5/synth-age.json")))
    for g in ("1.25", "1.5"):
        print(row(f"1, group guidance {g}", SHIPPED[f"synth-group, id_guidance {g}"], None))
        print(row(f"1.5, group guidance {g}", load(f"scale1.5/synth-group-g{g}.json"), None))
    for g in ("1.5", "1.75", "2"):
        print(row(f"1, age guidance {g}, window", None, SHIPPED[window.format(g)]))
        print(row(f"1.5, age guidance {g}, window", None, load(f"scale1.5/synth-age-g{g}-window.json")))
    print(row("2, age guidance 1.5, window", None, load("scale2/synth-age-g1.5-window.json")))


if __name__ == "__main__":
    main()
