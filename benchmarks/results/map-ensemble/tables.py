"""Issue 19, exploratory: results.md for the feature map in the branch with the loss over two embedders (criteria.md,
chain.sh): the lever against the ensemble lever at equal budget (the same run without the map; its scores, check
embedder scores and probes are idloss-ensemble's), chosen records, noise seed 0, one training seed each; benchmark
scores paired over records, probe shares unpaired. The baseline (idloss-high) is read beside. Re-run: python tables.py"""

import json
from pathlib import Path

from idglow.eval.lever_tables import lever_results

HERE = Path(__file__).parent
ENSEMBLE = HERE.parent / "idloss-ensemble"  # the reference: the loss over two embedders, the branch without the map
REFERENCE = "ensemble lever"


def criteria(found: dict) -> dict[str, bool]:
    """The criteria criteria.md wrote before training, read off :func:`lever_results`: name -> held."""
    group, age = found["synth-group"], found["synth-age"]
    eye = found["caps"]["lever"]["probes"]["accuracy"]["synth-group/run"]["eye_spacing"]["accuracy"]
    gain = group["facesim_norm"]
    return {f"eye-spacing probe on group faces at least 0.58 (read {eye:.2f})": eye >= 0.58,
            "group FaceSim/mu at least 0.02 higher, interval above 0 (judge)":
                gain["difference"] >= 0.02 and gain["interval"][0] > 0,
            "count accuracy and child rate each no more than 0.02 lower":
                group["count_accuracy"]["difference"] >= -0.02 and age["child_rate"]["difference"] >= -0.02}


def main() -> None:
    tables, found = lever_results(HERE, ENSEMBLE, ENSEMBLE / "check-resnet-lever", ENSEMBLE / "cap-lever.json",
                                  prefix="lever", name=REFERENCE)
    checks = criteria(found)
    baseline = {b: json.loads((HERE.parent / "idloss-high" / f"baseline-{b.split('-')[1]}" / f"{b}.json").read_text())
                for b in ("synth-group", "synth-age")}
    intro = ("The branch reading the encoder's 4x4 feature map with the loss over the `encoder` and `encoder_spatial` "
             "(`configs/sft-jitter3k-init-map-ensemble.yaml`, the lever) against the same 1,000 steps without the map "
             "(`configs/sft-jitter3k-init-ensemble.yaml`, the ensemble lever; its scores are `../idloss-ensemble/lever-*`): "
             "SFT only, 100 chosen records, noise seed 0, **one training seed each**; 95% bootstrap intervals, paired "
             "over records. Criteria: `criteria.md`. Written by `tables.py`.")
    lines = [intro + "\n", *tables, "", "The baseline beside (`runs/sft-jitter3k-init`, neither lever): groups "
             f"{baseline['synth-group']['facesim_norm']:.3f}, age {baseline['synth-age']['facesim_norm']:.3f}.",
             "", "Criteria read off these tables: "
             + "; ".join(f"{name}: {'held' if ok else 'failed'}" for name, ok in checks.items()) + ".",
             "", "Faces: `../idloss-ensemble/skin_faces-lever.png`, `skin_faces-lever.png` (`benchmarks/skin_faces.py`)."]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
