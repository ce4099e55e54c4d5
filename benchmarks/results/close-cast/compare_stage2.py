"""Read stage 2 of the close-up cast against `criteria-stage2.md`: the close SFT run against the pairs run at today's
framing, equal steps, one training seed each.

Prints markdown: the three criteria with their values and verdicts, then both runs' benchmark metrics with their
bootstrap intervals, the differences (independent records, each side over its own mu_real), and the factor probes of
the generated faces with 95% Wilson intervals.

    python benchmarks/results/close-cast/compare_stage2.py      # after chain-stage2.sh
"""

import argparse
import json
from pathlib import Path

from compare import FACTORS, fmt

from idglow.eval.pooling import estimate_text, independent_difference, read_scores

HERE = Path(__file__).resolve().parent
KEYS = ("facesim_norm", "identification", "count_accuracy", "child_rate", "mini_adult_rate")
SIDES, BENCHES = ("close", "pairs"), ("synth-group", "synth-age")


def load(folder: Path, bench: str) -> tuple[dict, list[dict]]:
    """An `sft-eval` folder's summary and per-record scores of ``bench``."""
    return json.loads((folder / f"{bench}.json").read_text()), read_scores(folder, bench)


def difference(close: tuple, pairs: tuple, key: str) -> dict | None:
    return independent_difference(close[1], pairs[1], key, close[0]["mu_real"], pairs[0]["mu_real"])


def criteria(group_close, group_pairs, age_close, probes_close, probes_pairs) -> list[tuple[str, str, bool]]:
    """(criterion, values, holds) for criteria 1-3 of `criteria-stage2.md`."""
    d = difference(group_close, group_pairs, "facesim_norm")
    eye_c = probes_close["synth-group/run"]["eye_spacing"]["accuracy"]
    eye_p = probes_pairs["synth-group/run"]["eye_spacing"]["accuracy"]
    count, child = group_close[0]["count_accuracy"], age_close[0]["child_rate"]
    return [
        ("1 group FaceSim/mu, close - pairs", "{:+.3f} [{:+.3f}, {:+.3f}] (bar +0.050, interval above 0)".format(
            d["difference"], *d["interval"]), d["difference"] >= 0.05 and d["interval"][0] > 0),
        ("2 eye spacing of generated group faces", f"close {eye_c:.2f} vs pairs {eye_p:.2f} (bar {eye_p + 0.10:.2f})",
         eye_c >= eye_p + 0.10),
        ("3 close counts and ages", f"count accuracy {count:.2f} (bar 0.90); child rate {child:.2f} (bar 0.85)",
         count >= 0.9 and child >= 0.85),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=HERE / "stage2", type=Path,
                        help="folder with close/ and pairs/ (sft-eval summaries and scores) and cap-close.json, "
                             "cap-pairs.json (identity_cap of the runs)")
    args = parser.parse_args()
    needed = [args.results / side / f"{b}{ext}" for side in SIDES for b in BENCHES
              for ext in (".json", ".scores.jsonl")]
    needed += [args.results / f"cap-{side}.json" for side in SIDES]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise SystemExit(f"not found: {', '.join(missing)} (run benchmarks/results/close-cast/chain-stage2.sh first)")
    runs = {side: {b: load(args.results / side, b) for b in BENCHES} for side in SIDES}
    probes = {side: json.loads((args.results / f"cap-{side}.json").read_text())["probes"]["accuracy"] for side in SIDES}
    rows = criteria(runs["close"]["synth-group"], runs["pairs"]["synth-group"], runs["close"]["synth-age"],
                    probes["close"], probes["pairs"])
    print("| criterion | values | holds |\n|---|---|---|")
    for name, values, holds in rows:
        print(f"| {name} | {values} | {'yes' if holds else 'no'} |")
    print(f"\nAll hold: {'yes' if all(h for _, _, h in rows) else 'no'}\n")
    print("| benchmark | metric | close | pairs (today's benchmark, groups of 1-2) | close - pairs |")
    print("|---|---|---|---|---|")
    for bench in BENCHES:
        for key in KEYS:
            close, pairs = runs["close"][bench], runs["pairs"][bench]
            if close[0].get(key) is None:
                continue
            d = difference(close, pairs, key)
            text = "–" if d is None else "{:+.3f} [{:+.3f}, {:+.3f}]".format(d["difference"], *d["interval"])
            print(f"| {bench} | {key} | {estimate_text(close[0], key)} | {estimate_text(pairs[0], key)} | {text} |")
    print("\n| factor of generated faces | " + " | ".join(f"{b} {s}" for b in BENCHES for s in SIDES) + " |")
    print("|---|---|---|---|---|")
    for factor in FACTORS:
        cells = [fmt(probes[s][f"{b}/run"][factor]["accuracy"], probes[s][f"{b}/run"]["faces"])
                 for b in BENCHES for s in SIDES]
        print(f"| {factor} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
