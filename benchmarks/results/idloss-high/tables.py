"""Issue 19, exploratory: results.md for the identity loss switched off at low sigma (criteria.md, chain.sh).
The lever against its baseline at equal budget, on the chosen records (noise seed 0, one training seed each), paired
over records; and the references' effect on the held-out flow loss by sigma. Re-run: python tables.py"""

from pathlib import Path

from idglow.eval.lever_tables import lever_benchmark_tables

HERE = Path(__file__).parent


def main() -> None:
    lines = ["The identity loss off below sigma 0.3 (`configs/sft-jitter3k-init-idloss-high.yaml`, the lever) against "
             "the same 1,000 steps with it on at every sigma (`runs/sft-jitter3k-init`, the baseline): SFT only, 100 "
             "chosen records, noise seed 0, **one training seed each**; 95% bootstrap intervals, paired over records. "
             "Criteria: `criteria.md`. Written by `tables.py`.\n"]
    tables, diffs, effects = lever_benchmark_tables(HERE, HERE)
    lines += tables
    close = diffs["synth-group"]["facesim_norm"]["difference"] >= -0.02
    halved = effects["lever"]["0.05"] < effects["baseline"]["0.05"] / 2
    lines += ["", f"Criteria: group FaceSim/mu within 0.02 of the baseline: {'held' if close else 'failed'}; the "
              f"references' penalty at sigma 0.05 under half the baseline's: {'held' if halved else 'failed'}. "
              f"**{'Worth a DPO chain' if close and halved else 'Not pursued'}.**",
              "", "Faces: `skin_faces-baseline.png`, `skin_faces-lever.png` (`benchmarks/skin_faces.py`)."]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
