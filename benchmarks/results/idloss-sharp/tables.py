"""Issue 19, exploratory: results.md for the identity loss only at sigma <= 0.5 (criteria.md, chain.sh): the lever
against its baseline at equal budget (the baseline's scores are idloss-high's), chosen records, noise seed 0, one
training seed each, paired over records; and the references' effect on the held-out flow loss. Re-run: python tables.py"""

from pathlib import Path

from idglow.eval.lever_tables import lever_table, reference_effect, reference_effect_table
from idglow.eval.pooling import paired_difference, read_scores

HERE = Path(__file__).parent
BASELINE = HERE.parent / "idloss-high"  # runs/sft-jitter3k-init, scored by idloss-high/chain.sh
BENCHMARKS = {"synth-group": (("facesim_norm", "identification", "count_accuracy", "leakage_rate"), "guidance 1"),
              "synth-age": (("facesim_norm", "identification", "child_rate", "mini_adult_rate"),
                            "guidance 1.25, the age window")}
SIGMAS = ("0.05", "0.15", "0.25", "0.35", "0.55", "0.75")


def main() -> None:
    lines = ["The identity loss only at sigma <= 0.5 (`configs/sft-jitter3k-init-idloss-sharp.yaml`, the lever) against the "
             "same 1,000 steps with it at every sigma (`runs/sft-jitter3k-init`, the baseline; its scores are "
             "`../idloss-high/baseline-*`): SFT only, 100 chosen records, noise seed 0, **one training seed each**; 95% "
             "bootstrap intervals, paired over records. Criteria: `criteria.md`. Written by `tables.py`.\n"]
    diffs = {}
    for bench, (keys, sampler) in BENCHMARKS.items():
        short = bench.split("-")[1]
        table, diffs[bench] = lever_table(bench, keys, f"{bench}, {sampler}", BASELINE / f"baseline-{short}",
                                          HERE / f"lever-{short}")
        lines += table
    effects = {"baseline": reference_effect(BASELINE / "baseline-diagnostics.jsonl", SIGMAS),
               "lever": reference_effect(HERE / "lever-diagnostics.jsonl", SIGMAS)}
    lines += reference_effect_table(effects, SIGMAS)
    check = paired_difference([read_scores(HERE / "check-resnet-lever", "synth-group")],
                              [read_scores(HERE.parent / "idloss-ensemble" / "check-resnet-baseline", "synth-group")],
                              "facesim_norm", 1.0)  # mu_real 1: raw FaceSim
    lines += ["", "Groups scored by the pooled check embedder (`../idloss-ensemble/check_judges.sh`), raw FaceSim, lever "
              "minus baseline: {:+.3f} [{:+.3f}, {:+.3f}].".format(check["difference"], *check["interval"])]
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
