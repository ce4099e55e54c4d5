"""Trained with the gate, or sampled with it? Claims (i) and (ii) decomposed (issue 22).

The claims compare models that differ in the gate they were *trained* with and, because each samples with its own
gate, in the gate they are *sampled* with. This script crosses the two: each seed's paper-recipe model (group linear
decay, age window 0.3-0.7) is also sampled with the constant gate, and each constant-gate model with the paper's
gates (``idglow train sft-eval --schedule``, the same records, references and noise as the claims). With the claims'
own evaluations on the diagonal, a 2x2 table per seed splits a difference into

- the **training effect**: paper-trained minus constant-trained, both sampled with the same gate;
- the **sampling effect**: the same trained model sampled with the paper's gate minus with the constant gate;

each pooled over the seeds with a paired 95% bootstrap interval (``idglow.eval.pooling.paired_difference``;
Fréchet, a set-level distance, per seed). The diagonal comes from ``benchmarks/results/claims`` (kept by
``benchmarks/claims.py``); the crossed cells need the claims' trained runs (``--runs``) and are kept beside the
results, so a re-run reuses them. Four evaluations, about 4 minutes each on a quiet 2-core CPU.

    python benchmarks/gate_crossover.py [--runs runs/claims] [--seeds 0 1] [--limit 100] [--out benchmarks/results/gate_crossover]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from idglow.eval.pooling import difference_text, evaluated, folder_difference, keep_evaluation, pooled_summary, read_scores

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).parents[1]
BENCHMARKS = ("synth-group", "synth-age")
# the claims' SFT variants crossed here -> the sampling-time gate overrides that give the *other* variant's gates
GATES = {"paper": ["group.kind=linear_decay", "age.kind=window"], "constant": ["group.kind=constant", "age.kind=constant"]}
# benchmark -> the metrics reported (per-record metrics get paired intervals; Fréchet is per seed)
METRICS = {"synth-group": [("facesim_norm", "FaceSim/mu"), ("frechet_judge", "Fréchet"), ("copy_paste", "copy-paste"),
                           ("count_accuracy", "count acc")],
           "synth-age": [("facesim_norm", "FaceSim/mu"), ("child_rate", "child rate"), ("mini_adult_rate", "mini-adult"),
                         ("frechet_judge", "Fréchet")]}


def cell(trained: str, sampled: str, seed: int, args) -> Path:
    """The evaluation folder of the ``trained`` variant's seed-``seed`` model sampled with ``sampled``'s gates: the
    claims' kept evaluation on the diagonal, else kept here (evaluated now if missing)."""
    name = f"sft-{trained}-s{seed}"
    if trained == sampled:
        folder = Path(args.claims) / f"{name}-{args.sft_steps}steps-limit{args.limit}"
        if not evaluated(folder, BENCHMARKS):
            sys.exit(f"{folder}: no kept claims evaluation; run benchmarks/claims.py --claims group first")
        return folder
    keep = Path(args.out) / f"{name}-sampled-{sampled}-limit{args.limit}"
    if evaluated(keep, BENCHMARKS):
        return keep
    run = Path(args.runs) / name
    if not (run / "final").is_dir():
        sys.exit(f"{run}: no finished claims run to sample (train it with benchmarks/claims.py --claims group)")
    out = run / f"crossover-{sampled}-{args.limit}"
    if not evaluated(out, BENCHMARKS):
        command = [sys.executable, "-m", "idglow", "train", "sft-eval", "--run", str(run), "--limit", str(args.limit),
                   "--out", str(out)]
        for item in GATES[sampled]:
            command += ["--schedule", item]
        print("+", " ".join(command[2:]), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
    return keep_evaluation(out, keep, BENCHMARKS)


def text(d: dict | None) -> str:
    return difference_text(d)


def value(folders: list[Path], bench: str, key: str) -> str:
    summaries = [json.loads((f / f"{bench}.json").read_text()) for f in folders]
    if key == "frechet_judge":
        return " / ".join(f"{s[key]:.2f}" for s in summaries)
    pooled = pooled_summary([read_scores(f, bench) for f in folders], summaries[0]["mu_real"])
    low, high = pooled["intervals"][key]
    return f"{pooled[key]:.3f} [{low:.3f}, {high:.3f}]"


def report(cells: dict[tuple[str, str], list[Path]]) -> tuple[str, dict]:
    """The 2x2 tables and the two effects at each level of the other factor, as markdown and data."""
    lines, data = [], {}
    for bench in BENCHMARKS:
        lines += [f"**{bench}** (cells pooled over the seeds; Fréchet per seed)", "",
                  "| trained with | sampled with | " + " | ".join(n for _, n in METRICS[bench]) + " |",
                  "|---|---|" + "---|" * len(METRICS[bench])]
        for trained, sampled in cells:
            lines.append(f"| {trained} | {sampled} | "
                         + " | ".join(value(cells[trained, sampled], bench, k) for k, _ in METRICS[bench]) + " |")
        lines += ["", "| effect | at | " + " | ".join(n for _, n in METRICS[bench]) + " |",
                  "|---|---|" + "---|" * len(METRICS[bench])]
        effects = {}
        for gate in GATES:
            effects[f"training (paper - constant), sampled {gate}"] = {
                k: folder_difference(cells["paper", gate], cells["constant", gate], bench, k) for k, _ in METRICS[bench]}
            effects[f"sampling (paper - constant), trained {gate}"] = {
                k: folder_difference(cells[gate, "paper"], cells[gate, "constant"], bench, k) for k, _ in METRICS[bench]}
        for name, row in effects.items():
            kind, at = name.split(", ")
            lines.append(f"| {kind} | {at} | " + " | ".join(text(row[k]) for k, _ in METRICS[bench]) + " |")
        lines.append("")
        data[bench] = effects
    return "\n".join(lines), data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs/claims", help="the claims' trained runs (default: runs/claims)")
    parser.add_argument("--claims", default="benchmarks/results/claims", help="the claims' kept evaluations")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="training seeds (default: 0 1)")
    parser.add_argument("--sft-steps", type=int, default=600, help="the claims' SFT budget (default: 600)")
    parser.add_argument("--limit", type=int, default=100, help="records per benchmark (default: 100, as the claims)")
    parser.add_argument("--out", default="benchmarks/results/gate_crossover", help="crossed evaluations and results")
    args = parser.parse_args()
    os.chdir(ROOT)
    cells = {(trained, sampled): [cell(trained, sampled, seed, args) for seed in args.seeds]
             for trained in GATES for sampled in GATES}
    table, data = report(cells)
    head = (f"Claims (i) and (ii) crossed: {len(args.seeds)} training seeds ({', '.join(map(str, args.seeds))}), SFT "
            f"{args.sft_steps} steps, {args.limit} records per benchmark per seed. 'paper' gates: group linear decay, "
            "age window 0.3-0.7; 'constant': both constant. Effects: paired 95% bootstrap intervals over the pooled "
            "records.\n\n")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.md").write_text(head + table)
    (Path(args.out) / "results.json").write_text(json.dumps({"seeds": args.seeds, "limit": args.limit,
                                                             "sft_steps": args.sft_steps, "effects": data}, indent=2) + "\n")
    print(head + table)


if __name__ == "__main__":
    main()
