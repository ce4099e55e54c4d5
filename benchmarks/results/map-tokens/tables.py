"""Issue 19, exploratory: results.md for the identity branch reading the encoder's 4x4 feature map (criteria.md,
chain.sh): the lever against its baseline at equal budget (scores from idloss-high, check embedder and probes from
idloss-ensemble), chosen records, noise seed 0, one training seed each; benchmark scores paired over records, probe
shares unpaired. Re-run: python tables.py"""

from pathlib import Path

from idglow.eval.lever_tables import lever_results

HERE = Path(__file__).parent
ENSEMBLE = HERE.parent / "idloss-ensemble"  # the baseline's check embedder scores and factor probes


def criteria(found: dict, eye_spacing: float) -> dict[str, bool]:
    """The criteria criteria.md wrote before training, read off :func:`lever_results`: name -> held."""
    group, age = found["synth-group"], found["synth-age"]
    gain = group["facesim_norm"]
    return {"group FaceSim/mu at least 0.02 higher, interval above 0 (judge)":
                gain["difference"] >= 0.02 and gain["interval"][0] > 0,
            "group raw FaceSim not lower (pooled check embedder)": found["check"]["difference"] >= 0,
            f"eye-spacing probe on group faces at least 0.58 (read {eye_spacing:.2f})": eye_spacing >= 0.58,
            "count accuracy no more than 0.02 lower": group["count_accuracy"]["difference"] >= -0.02,
            "child rate no more than 0.02 lower": age["child_rate"]["difference"] >= -0.02}


def main() -> None:
    tables, found = lever_results(HERE, HERE.parent / "idloss-high", ENSEMBLE / "check-resnet-baseline",
                                  ENSEMBLE / "cap-baseline.json")
    checks = criteria(found, found["caps"]["lever"]["probes"]["accuracy"]["synth-group/run"]["eye_spacing"]["accuracy"])
    intro = ("The identity branch reading the encoder's 4x4 feature map beside its pooled embedding "
             "(`configs/sft-jitter3k-init-map.yaml`, the lever) against the same 1,000 steps reading the pooled embedding "
             "alone (`runs/sft-jitter3k-init`, the baseline; its scores are `../idloss-high/baseline-*`): SFT only, 100 "
             "chosen records, noise seed 0, **one training seed each**; 95% bootstrap intervals, paired over records. "
             "Criteria: `criteria.md`. Written by `tables.py`.")
    lines = [intro + "\n", *tables, "", "Criteria read off these tables: "
             + "; ".join(f"{name}: {'held' if ok else 'failed'}" for name, ok in checks.items()) + ".",
             "", "Faces: `../idloss-high/skin_faces-baseline.png`, `skin_faces-lever.png` (`benchmarks/skin_faces.py`)."]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
