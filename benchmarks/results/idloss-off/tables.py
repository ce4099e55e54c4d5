"""Issue 19, exploratory: results.md for the identity loss switched off for 1,000 steps (criteria.md, chain.sh): the
lever against its baseline at equal budget (scores from idloss-high, check embedder and probes from idloss-ensemble),
chosen records, noise seed 0, one training seed each; benchmark scores paired over records, probe shares unpaired
with Wilson intervals. Re-run: python tables.py"""

from pathlib import Path

from idglow.eval.lever_tables import lever_results

HERE = Path(__file__).parent
ENSEMBLE = HERE.parent / "idloss-ensemble"  # its check embedder's and probes' baseline rows


def main() -> None:
    lines = ["The identity loss switched off (`configs/sft-jitter3k-init-idloss-off.yaml`, the lever) against the same "
             "1,000 steps with it on (`runs/sft-jitter3k-init`, the baseline; its scores are `../idloss-high/baseline-*`):"
             " SFT only, 100 chosen records, noise seed 0, **one training seed each**; 95% bootstrap intervals, paired "
             "over records. Criteria: `criteria.md`. Written by `tables.py`.\n"]
    tables, found = lever_results(HERE, HERE.parent / "idloss-high", ENSEMBLE / "check-resnet-baseline",
                                  ENSEMBLE / "cap-baseline.json")
    group, age, light = found["synth-group"], found["synth-age"], found["light"]
    checks = {"light-tone skin probe at least 0.10 more exact and less dark":
                  light["lever"]["exact"] >= light["baseline"]["exact"] + 0.10
                  and light["lever"]["shift"] < light["baseline"]["shift"],
              "group FaceSim/mu no more than 0.03 lower (judge)": group["facesim_norm"]["difference"] >= -0.03,
              "group raw FaceSim no more than 0.03 lower (pooled check embedder)": found["check"]["difference"] >= -0.03,
              "count accuracy no more than 0.02 lower": group["count_accuracy"]["difference"] >= -0.02,
              "child rate no more than 0.02 lower": age["child_rate"]["difference"] >= -0.02}
    lines += tables + ["", "Criteria read off these tables (the faces' criterion is judged in criteria.md): "
                       + "; ".join(f"{name}: {'held' if ok else 'failed'}" for name, ok in checks.items()) + ".",
                       "", "Faces: `../idloss-high/skin_faces-baseline.png`, `skin_faces-lever.png` "
                       "(`benchmarks/skin_faces.py`)."]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
