"""Issue 19, exploratory: results.md for the identity loss only at sigma <= 0.5 (criteria.md, chain.sh): the lever
against its baseline at equal budget (the baseline's scores are idloss-high's), chosen records, noise seed 0, one
training seed each, paired over records; and the references' effect on the held-out flow loss. Re-run: python tables.py"""

from pathlib import Path

from idglow.eval.lever_tables import check_embedder_difference, lever_benchmark_tables

HERE = Path(__file__).parent
BASELINE = HERE.parent / "idloss-high"  # runs/sft-jitter3k-init, scored by idloss-high/chain.sh


def main() -> None:
    lines = ["The identity loss only at sigma <= 0.5 (`configs/sft-jitter3k-init-idloss-sharp.yaml`, the lever) against the "
             "same 1,000 steps with it at every sigma (`runs/sft-jitter3k-init`, the baseline; its scores are "
             "`../idloss-high/baseline-*`): SFT only, 100 chosen records, noise seed 0, **one training seed each**; 95% "
             "bootstrap intervals, paired over records. Criteria: `criteria.md`. Written by `tables.py`.\n"]
    tables, diffs, _ = lever_benchmark_tables(HERE, BASELINE)
    check_lines, check = check_embedder_difference(HERE, HERE.parent / "idloss-ensemble" / "check-resnet-baseline")
    lines += tables + check_lines
    group, age = diffs["synth-group"], diffs["synth-age"]
    checks = {"group FaceSim/mu no more than 0.02 lower (judge)": group["facesim_norm"]["difference"] >= -0.02,
              "group raw FaceSim no more than 0.02 lower (pooled check embedder)": check["difference"] >= -0.02,
              "count accuracy no more than 0.02 lower": group["count_accuracy"]["difference"] >= -0.02,
              "child rate no more than 0.02 lower": age["child_rate"]["difference"] >= -0.02}
    lines += ["", "Criteria read off these tables (the faces' criterion is judged in criteria.md): "
              + "; ".join(f"{name}: {'held' if ok else 'failed'}" for name, ok in checks.items()) + ".",
              "", "Faces: `../idloss-high/skin_faces-baseline.png`, `skin_faces-lever.png` (`benchmarks/skin_faces.py`)."]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
