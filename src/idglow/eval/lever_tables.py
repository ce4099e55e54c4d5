"""Tables of one lever against its baseline at equal budget (issue 19's exploratory runs): benchmark scores paired
over records, what the references do to the held-out flow-matching loss by sigma (``diagnostics.jsonl``), and which
identity factors the faces carry (``benchmarks/identity_cap.py``'s probes)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from idglow.eval.pooling import difference_text, estimate_text, folder_difference, paired_difference, read_scores


def lever_table(benchmark: str, keys: Sequence[str], title: str, baseline: str | Path,
                lever: str | Path, name: str = "baseline") -> tuple[list[str], dict]:
    """A lever against its baseline as markdown: one ``sft-eval`` folder each (one noise seed), their estimates of
    ``keys`` and judge Fréchet, and the lever minus the baseline paired over records; ``name`` labels the baseline's
    row. Returns the table's lines and the :func:`folder_difference` of each key (and ``frechet_judge``)."""
    summaries = {name: json.loads((Path(baseline) / f"{benchmark}.json").read_text()),
                 "lever": json.loads((Path(lever) / f"{benchmark}.json").read_text())}
    diffs = {k: folder_difference([lever], [baseline], benchmark, k) for k in (*keys, "frechet_judge")}
    lines = [f"### {title}\n", "| | " + " | ".join(keys) + " | frechet_judge |", "|---|" + "---|" * (len(keys) + 1)]
    for row, summary in summaries.items():
        lines.append(f"| {row} | " + " | ".join(estimate_text(summary, k) for k in keys)
                     + f" | {summary['frechet_judge']:.2f} |")
    lines += [f"| lever minus {name} | " + " | ".join(difference_text(diffs[k]) for k in (*keys, "frechet_judge"))
              + " |", ""]
    return lines, diffs


def reference_effect(diagnostics: str | Path, sigmas: Sequence[str]) -> dict:
    """Held-out flow loss with the true references minus without any, per sigma (as written in ``diagnostics.jsonl``,
    e.g. ``"0.05"``), at the run's last diagnostic step, with that ``step`` (positive: the references hurt)."""
    last = [json.loads(line) for line in Path(diagnostics).read_text().splitlines() if line.strip()][-1]
    return {s: last[f"heldout_true_sigma_{s}"] - last[f"heldout_none_sigma_{s}"] for s in sigmas} | {"step": last["step"]}


def reference_effect_table(effects: dict[str, dict], sigmas: Sequence[str]) -> list[str]:
    """Markdown of :func:`reference_effect` per run name (x1000)."""
    lines = ["### The references' effect on the held-out flow loss (true minus none, x1000; + = they hurt)\n",
             "| run (step) | " + " | ".join(f"sigma {s}" for s in sigmas) + " |", "|---|" + "---|" * len(sigmas)]
    for name, e in effects.items():
        lines.append(f"| {name} ({e['step']}) | " + " | ".join(f"{1000 * e[s]:+.2f}" for s in sigmas) + " |")
    return lines


PROBED_FACTORS = ("skin", "hair_colour", "eye_colour", "hair_style", "face_aspect", "eye_spacing", "eye_size",
                  "mouth_width")


def wilson_interval(hits: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% at the default ``z``) of a share ``hits / n``."""
    p = hits / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def light_tone_skin(cap: dict, row: str, tones: str = "012") -> dict:
    """The skin probe on faces of the light true tones (``identity_cap.py``'s ``skin_by_tone``, row e.g.
    ``synth-group/run``): faces, the exact share with its Wilson interval, and the mean shift in tones (+ = darker).
    The probe reads the cast models' eye-like texture on light faces as darker skin, but it also falls when skin is
    not bound at all (``benchmarks/results/idloss-off``): read it beside the other factors."""
    by_tone = cap["probes"]["skin_by_tone"][row]
    n = sum(by_tone[t]["faces"] for t in tones)
    exact = sum(by_tone[t]["faces"] * by_tone[t]["exact"] for t in tones)
    shift = sum(by_tone[t]["faces"] * by_tone[t]["mean_shift"] for t in tones) / n
    return {"faces": n, "exact": exact / n, "interval": wilson_interval(exact, n), "shift": shift}


def probe_table(title: str, rows: dict[str, tuple[dict, str]]) -> tuple[list[str], dict[str, dict]]:
    """Markdown of the factor probes' accuracy per named row (``(identity_cap json, row)``), with the light-tone skin
    column of :func:`light_tone_skin`. Returns the lines and each row's light-tone dict."""
    lines = [f"### {title}\n", "| faces | " + " | ".join(PROBED_FACTORS)
             + " | skin, light tones 0-2: exact [95%] / mean shift in tones |", "|---|" + "---|" * (len(PROBED_FACTORS) + 1)]
    light = {}
    for name, (cap, row) in rows.items():
        accuracy, light[name] = cap["probes"]["accuracy"][row], light_tone_skin(cap, row)
        lo, hi = light[name]["interval"]
        lines.append(f"| {name} | " + " | ".join(f"{accuracy[f]['accuracy']:.2f}" for f in PROBED_FACTORS)
                     + f" | {light[name]['exact']:.3f} [{lo:.3f}, {hi:.3f}] / {light[name]['shift']:+.2f}"
                     f" ({light[name]['faces']} faces) |")
    return lines, light


LEVER_BENCHMARKS = {"synth-group": (("facesim_norm", "identification", "count_accuracy", "leakage_rate"), "guidance 1"),
                    "synth-age": (("facesim_norm", "identification", "child_rate", "mini_adult_rate"),
                                  "guidance 1.25, the age window")}
LEVER_SIGMAS = ("0.05", "0.15", "0.25", "0.35", "0.55", "0.75")


def lever_benchmark_tables(here: Path, baseline: Path, prefix: str = "baseline",
                           name: str = "baseline") -> tuple[list[str], dict, dict]:
    """The lever folder ``here`` (``lever-group``, ``lever-age``, ``lever-diagnostics.jsonl``) against ``baseline``
    (``baseline-group``, ``baseline-age``, ``baseline-diagnostics.jsonl``; another lever's folder with ``prefix``
    ``lever``, labelled ``name``): both benchmarks' :func:`lever_table` and the :func:`reference_effect_table`.
    Returns the markdown lines, the folder differences per benchmark and the references' effects per run (``name``,
    ``lever``)."""
    lines, diffs = [], {}
    for bench, (keys, sampler) in LEVER_BENCHMARKS.items():
        short = bench.split("-")[1]
        table, diffs[bench] = lever_table(bench, keys, f"{bench}, {sampler}", baseline / f"{prefix}-{short}",
                                          here / f"lever-{short}", name)
        lines += table
    effects = {name: reference_effect(baseline / f"{prefix}-diagnostics.jsonl", LEVER_SIGMAS),
               "lever": reference_effect(here / "lever-diagnostics.jsonl", LEVER_SIGMAS)}
    return lines + reference_effect_table(effects, LEVER_SIGMAS), diffs, effects


def check_embedder_difference(here: Path, check_baseline: Path, name: str = "baseline") -> tuple[list[str], dict]:
    """Groups under the pooled check embedder (``here/check-resnet-lever`` against ``check_baseline``, labelled
    ``name``), raw FaceSim, paired: the sentence reporting it and the :func:`paired_difference`."""
    check = paired_difference([read_scores(here / "check-resnet-lever", "synth-group")],
                              [read_scores(check_baseline, "synth-group")], "facesim_norm", 1.0)  # mu_real 1: raw
    return ["", "Groups scored by the pooled check embedder (`../idloss-ensemble/check_judges.sh`), raw FaceSim, lever "
            f"minus {name}: " + "{:+.3f} [{:+.3f}, {:+.3f}].".format(check["difference"], *check["interval"])], check


def lever_results(here: Path, baseline: Path, check_baseline: Path, cap_baseline: Path, prefix: str = "baseline",
                  name: str = "baseline") -> tuple[list[str], dict]:
    """:func:`lever_benchmark_tables`, :func:`check_embedder_difference` and the factor probes (``here/cap-lever.json``
    against ``cap_baseline``) of one SFT lever, against the baseline (``prefix`` and ``name`` as for
    :func:`lever_benchmark_tables`). Returns the markdown lines and ``{"synth-group": ..., "synth-age": ...}``
    folder differences, ``check`` (raw FaceSim under the check embedder), ``light`` (rows of :func:`light_tone_skin`)
    and ``caps`` (both runs' ``identity_cap.py`` results)."""
    lines, found, _ = lever_benchmark_tables(here, baseline, prefix, name)
    check_lines, found["check"] = check_embedder_difference(here, check_baseline, name)
    caps = {name: json.loads(Path(cap_baseline).read_text()),
            "lever": json.loads((here / "cap-lever.json").read_text())}
    table, found["light"] = probe_table("Which factors the group faces carry (the judge's probes, sigma 1, guidance 1; "
                                        "unpaired)", {"true renders": (caps[name], "synth-group/truth"),
                                                      name: (caps[name], "synth-group/run"),
                                                      "lever": (caps["lever"], "synth-group/run")})
    found["caps"] = caps
    return lines + check_lines + [""] + table, found


def texture_lever_checks(found: dict) -> dict[str, bool]:
    """The numeric criteria the texture levers (``benchmarks/results/idloss-off``, ``idloss-robust``) wrote before
    training, read off :func:`lever_results`: name -> held."""
    group, age, light = found["synth-group"], found["synth-age"], found["light"]
    return {"light-tone skin probe at least 0.10 more exact and less dark":
                light["lever"]["exact"] >= light["baseline"]["exact"] + 0.10
                and light["lever"]["shift"] < light["baseline"]["shift"],
            "group FaceSim/mu no more than 0.03 lower (judge)": group["facesim_norm"]["difference"] >= -0.03,
            "group raw FaceSim no more than 0.03 lower (pooled check embedder)": found["check"]["difference"] >= -0.03,
            "count accuracy no more than 0.02 lower": group["count_accuracy"]["difference"] >= -0.02,
            "child rate no more than 0.02 lower": age["child_rate"]["difference"] >= -0.02}


def write_texture_lever_results(here: Path, intro: str, baseline: Path, check_baseline: Path,
                                cap_baseline: Path) -> dict[str, bool]:
    """``here/results.md`` of a texture lever: ``intro``, :func:`lever_results` against the baseline's folders (its
    arguments) and :func:`texture_lever_checks`. Returns the checks."""
    tables, found = lever_results(here, baseline, check_baseline, cap_baseline)
    checks = texture_lever_checks(found)
    lines = [intro + "\n", *tables, "", "Criteria read off these tables (the faces' criterion is judged in criteria.md): "
             + "; ".join(f"{name}: {'held' if ok else 'failed'}" for name, ok in checks.items()) + ".",
             "", "Faces: `../idloss-high/skin_faces-baseline.png`, `skin_faces-lever.png` (`benchmarks/skin_faces.py`)."]
    (here / "results.md").write_text("\n".join(lines) + "\n")
    return checks
