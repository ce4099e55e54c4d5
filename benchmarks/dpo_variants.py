"""Stage-2 results table: the three DPO loss variants against their SFT model on the held-out benchmarks.

Trains ``configs/synth-dpo.yaml`` once per loss variant (sigmoid, weighted, margin; resumable, finished
runs are not retrained), generates the same evenly spread benchmark records with the same seeds from
the SFT run and from each DPO run, and scores them: the group-level score (the pairs' ranking, here
with the evaluation judge and mu_real), FaceSim / mu_real, count accuracy, artifact score, Fréchet
distance in judge features, leakage, child rate, and the win rate of each DPO run over SFT (ties
half) with a 95% bootstrap interval over records.

    python benchmarks/dpo_variants.py [--sft runs/sft-lora] [--variants sigmoid weighted margin] [--limit 100]

Writes ``OUT/results.json`` and ``OUT/results.md`` (the README table). Needs data/pairs/pairs.jsonl
(`idglow pairs build --run runs/sft-lora --items 400 --candidates 4`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).parents[1]
BENCHMARKS = ("synth-group", "synth-age")


def train(variant: str, args) -> Path:
    out = Path(args.runs) / f"dpo-{variant}"
    if not (out / "final" / "lora.safetensors").is_file():
        argv = ["idglow", "train", "dpo", "--config", "configs/synth-dpo.yaml", "--sft", args.sft, "--out", str(out),
                "--dpo.loss", variant, "--log.progress", "false"]
        print("+", " ".join(argv), flush=True)
        subprocess.run(argv, check=True, cwd=ROOT)
    return out


def score(run: Path, name: str, args, judges) -> dict:
    """Generate and score both benchmarks with ``run``; returns metrics and per-record group scores."""
    from idglow.data.manifest import evenly_spread, load_manifest
    from idglow.eval.preference import benchmark_group_scores
    from idglow.eval.report import evaluate_generations
    from idglow.generate.files import SamplingOptions, generate_benchmark
    from idglow.generate.pipeline import IdGlowPipeline

    pipe, result = None, {}
    for bench in BENCHMARKS:
        manifest = Path(args.data) / f"{bench}.jsonl"
        ids = {r["id"] for r in evenly_spread(load_manifest(manifest, "benchmark"), args.limit)}
        folder = Path(args.out) / name / bench
        if not (folder / "eval" / "metrics.json").is_file():
            pipe = pipe or IdGlowPipeline.from_run(run)
            generate_benchmark(pipe, run, manifest, SamplingOptions(seed=0, steps=args.steps), folder, {}, ids=ids,
                               progress=False)
            evaluate_generations(folder, manifest, folder / "eval", progress=False, ids=ids)
        metrics = json.loads((folder / "eval" / "metrics.json").read_text())
        groups = benchmark_group_scores(folder, manifest, judges, ids=ids)
        result[bench] = {"metrics": metrics, "group_scores": groups, "group_score": sum(groups.values()) / len(groups)}
    return result


def training_summary(run: Path) -> dict:
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    last = log[-1]
    return {k: last.get(k) for k in ("step", "loss", "implicit_acc", "reward_margin", "elapsed_seconds")}


def row(name: str, result: dict, win: dict | None, train_info: dict | None) -> str:
    g, a = result["synth-group"], result["synth-age"]
    gm, am = g["metrics"], a["metrics"]
    cells = [f"{g['group_score']:.3f}", f"{a['group_score']:.3f}",
             f"{win['win_rate']:.3f} [{win['low']:.3f}, {win['high']:.3f}]" if win else "—",
             f"{gm['facesim_norm']:.3f}", f"{am['facesim_norm']:.3f}", f"{gm['count_accuracy']:.3f}",
             f"{am['count_accuracy']:.3f}", f"{(gm['artifact_score'] + am['artifact_score']) / 2:.3f}",
             f"{gm['frechet_judge']:.2f}", f"{gm['leakage_rate']:.3f}", f"{am.get('child_rate', float('nan')):.3f}",
             f"{train_info['implicit_acc']:.2f} / {train_info['reward_margin']:.2f}" if train_info else "—"]
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sft", default="runs/sft-lora", help="the SFT run DPO starts from (default: runs/sft-lora)")
    parser.add_argument("--variants", nargs="+", default=["sigmoid", "weighted", "margin"], help="DPO loss variants")
    parser.add_argument("--runs", default="runs", help="where the DPO runs go (runs/dpo-<variant>)")
    parser.add_argument("--data", default="data/cast", help="folder of the cast benchmarks")
    parser.add_argument("--limit", type=int, default=100, help="records per benchmark, evenly spread (default: 100)")
    parser.add_argument("--steps", type=int, default=20, help="Euler steps (default: 20)")
    parser.add_argument("--out", default="runs/dpo-variants", help="output folder")
    args = parser.parse_args()
    os.chdir(ROOT)
    from idglow.cast.judge_training import load_judges
    from idglow.eval.preference import win_rate

    judges = load_judges("assets/judges")
    runs = {v: train(v, args) for v in args.variants}
    results = {"sft": score(Path(args.sft), "sft", args, judges)}
    for variant, run in runs.items():
        results[f"dpo-{variant}"] = score(run, f"dpo-{variant}", args, judges)
    pooled = lambda r: {f"{b}/{k}": v for b in BENCHMARKS for k, v in r[b]["group_scores"].items()}  # noqa: E731
    wins = {name: win_rate(pooled(r), pooled(results["sft"])) for name, r in results.items() if name != "sft"}
    info = {f"dpo-{v}": training_summary(run) for v, run in runs.items()}
    head = ("| model | group score (group) | group score (age) | win rate vs SFT [95% CI] | group FaceSim/mu | "
            "age FaceSim/mu | group count acc | age count acc | artifact (both, lower better) | group Fréchet | "
            "group leakage | age child rate | end implicit acc / reward margin |")
    lines = [head, "|" + "---|" * 13]
    lines += [row(name, r, wins.get(name), info.get(name)) for name, r in results.items()]
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {name: {b: {"group_score": r[b]["group_score"], **{k: v for k, v in r[b]["metrics"].items()
                                                                   if not isinstance(v, (dict, list))}} for b in BENCHMARKS}
               for name, r in results.items()}
    (out / "results.json").write_text(json.dumps({"results": summary, "win_rates": wins, "training": info,
                                                  "limit": args.limit, "steps": args.steps}, indent=2) + "\n")
    (out / "results.md").write_text(text)
    print(text)
    for name, w in wins.items():
        print(f"{name}: {w['wins']} wins, {w['ties']} ties, {w['losses']} losses over {w['records']} records")


if __name__ == "__main__":
    main()
