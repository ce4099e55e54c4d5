"""Issue 19, exploratory: results.md for the identity loss switched off for 1,000 steps (criteria.md, chain.sh): the
lever against its baseline at equal budget (scores from idloss-high, check embedder and probes from idloss-ensemble),
chosen records, noise seed 0, one training seed each; benchmark scores paired over records, probe shares unpaired
with Wilson intervals. Re-run: python tables.py"""

import json
import math
from pathlib import Path

from idglow.eval.lever_tables import lever_table, reference_effect, reference_effect_table
from idglow.eval.pooling import paired_difference, read_scores

HERE = Path(__file__).parent
BASELINE = HERE.parent / "idloss-high"  # runs/sft-jitter3k-init, scored by idloss-high/chain.sh
ENSEMBLE = HERE.parent / "idloss-ensemble"  # its check embedder's and probes' baseline rows
BENCHMARKS = {"synth-group": (("facesim_norm", "identification", "count_accuracy", "leakage_rate"), "guidance 1"),
              "synth-age": (("facesim_norm", "identification", "child_rate", "mini_adult_rate"),
                            "guidance 1.25, the age window")}
SIGMAS = ("0.05", "0.15", "0.25", "0.35", "0.55", "0.75")
FACTORS = ("skin", "hair_colour", "eye_colour", "hair_style", "face_aspect", "eye_spacing", "eye_size", "mouth_width")


def wilson(hits: float, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a share ``hits / n``."""
    p, z = hits / n, 1.96
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def light_tones(cap: dict, row: str) -> dict:
    """The skin probe on faces of true tones 0-2 (the light ones): faces, exact share and mean shift in tones."""
    tones = cap["probes"]["skin_by_tone"][row]
    n = sum(tones[t]["faces"] for t in "012")
    exact = sum(tones[t]["faces"] * tones[t]["exact"] for t in "012")
    shift = sum(tones[t]["faces"] * tones[t]["mean_shift"] for t in "012") / n
    return {"faces": n, "exact": exact / n, "interval": wilson(exact, n), "shift": shift}


def probe_lines(caps: dict[str, dict]) -> tuple[list[str], dict]:
    """Per-factor probe accuracy on group faces (true renders, baseline, lever) and the light-tone skin row."""
    rows = {"true renders": (caps["baseline"], "synth-group/truth"), "baseline": (caps["baseline"], "synth-group/run"),
            "lever": (caps["lever"], "synth-group/run")}
    lines = ["### Which factors the group faces carry (the judge's probes, sigma 1, guidance 1; unpaired)\n",
             "| faces | " + " | ".join(FACTORS) + " | skin, light tones 0-2: exact [95%] / mean shift in tones |",
             "|---|" + "---|" * (len(FACTORS) + 1)]
    light = {}
    for name, (cap, row) in rows.items():
        acc = cap["probes"]["accuracy"][row]
        light[name] = light_tones(cap, row)
        lo, hi = light[name]["interval"]
        lines.append(f"| {name} | " + " | ".join(f"{acc[f]['accuracy']:.2f}" for f in FACTORS)
                     + f" | {light[name]['exact']:.3f} [{lo:.3f}, {hi:.3f}] / {light[name]['shift']:+.2f}"
                     f" ({light[name]['faces']} faces) |")
    return lines, light


def main() -> None:
    lines = ["The identity loss switched off (`configs/sft-jitter3k-init-idloss-off.yaml`, the lever) against the same "
             "1,000 steps with it on (`runs/sft-jitter3k-init`, the baseline; its scores are `../idloss-high/baseline-*`):"
             " SFT only, 100 chosen records, noise seed 0, **one training seed each**; 95% bootstrap intervals, paired "
             "over records. Criteria: `criteria.md`. Written by `tables.py`.\n"]
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
                              [read_scores(ENSEMBLE / "check-resnet-baseline", "synth-group")],
                              "facesim_norm", 1.0)  # mu_real 1: raw FaceSim
    lines += ["", "Groups scored by the pooled check embedder (`../idloss-ensemble/check_judges.sh`), raw FaceSim, lever "
              "minus baseline: {:+.3f} [{:+.3f}, {:+.3f}].".format(check["difference"], *check["interval"]), ""]
    caps = {"baseline": json.loads((ENSEMBLE / "cap-baseline.json").read_text()),
            "lever": json.loads((HERE / "cap-lever.json").read_text())}
    table, light = probe_lines(caps)
    lines += table
    group, age = diffs["synth-group"], diffs["synth-age"]
    checks = {"light-tone skin probe at least 0.10 more exact and less dark":
                  light["lever"]["exact"] >= light["baseline"]["exact"] + 0.10
                  and light["lever"]["shift"] < light["baseline"]["shift"],
              "group FaceSim/mu no more than 0.03 lower (judge)": group["facesim_norm"]["difference"] >= -0.03,
              "group raw FaceSim no more than 0.03 lower (pooled check embedder)": check["difference"] >= -0.03,
              "count accuracy no more than 0.02 lower": group["count_accuracy"]["difference"] >= -0.02,
              "child rate no more than 0.02 lower": age["child_rate"]["difference"] >= -0.02}
    lines += ["", "Criteria read off these tables (the faces' criterion is judged in criteria.md): "
              + "; ".join(f"{name}: {'held' if ok else 'failed'}" for name, ok in checks.items()) + ".",
              "", "Faces: `../idloss-high/skin_faces-baseline.png`, `skin_faces-lever.png` (`benchmarks/skin_faces.py`)."]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
