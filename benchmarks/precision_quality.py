"""Does bf16 sampling draw the same pictures as fp32? The same weights, records and seeds in both precisions.

For one trained run, generates the first ``--limit`` records of both held-out benchmarks in fp32 and in
bf16 autocast (same seeds: record k uses seed k), scores both folders with the cast judges, and compares:

- per record, paired: FaceSim/mu, count accuracy (and child rate on synth-age) — the mean difference
  bf16 - fp32 with a 95% bootstrap interval over records (scipy.stats.bootstrap);
- per folder: Fréchet distance of judge features and the artifact score (one number each);
- the wall time of each precision's generation, measured in the same run.

    python benchmarks/precision_quality.py --run runs/demo/sft/run --cast runs/demo/cast [--limit 40] [--steps 16]

Writes ``--out/precision_quality.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from scipy import stats

BENCHMARKS = ("synth-group", "synth-age")
PAIRED = {"synth-group": ("facesim", "count_ok"), "synth-age": ("facesim", "count_ok", "child")}
FOLDER = ("facesim_norm", "count_accuracy", "frechet_judge", "artifact_score", "child_rate")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a finished SFT or DPO run")
    p.add_argument("--cast", required=True, help="the cast folder holding synth-group.jsonl and synth-age.jsonl")
    p.add_argument("--limit", type=int, default=40, help="records per benchmark")
    p.add_argument("--steps", type=int, default=16, help="Euler steps")
    p.add_argument("--out", default="runs/precision-quality")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def _per_record(path: Path, mu_real: float) -> dict[str, dict]:
    rows = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        adults = len(r.get("adult_slots", []))
        matched = r["size"] - len(r.get("unmatched_slots", []))
        rows[r["id"]] = {"facesim": r["facesim"] / mu_real, "count_ok": r["count_ok"],
                         "child": (matched - adults) / r["size"]}  # as the benchmark's child rate counts it
    return rows


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict:
    """Mean of ``b - a`` over records with its 95% bootstrap interval."""
    diff = b - a
    if np.allclose(diff, diff[0]):
        return {"mean": float(diff.mean()), "low": float(diff.mean()), "high": float(diff.mean())}
    ci = stats.bootstrap((diff,), np.mean, confidence_level=0.95, n_resamples=2000, method="percentile",
                         random_state=np.random.default_rng(0)).confidence_interval
    return {"mean": float(diff.mean()), "low": float(ci.low), "high": float(ci.high)}


def main() -> None:
    from idglow.data.manifest import load_manifest
    from idglow.eval.mu_real import read_mu_real
    from idglow.eval.report import evaluate_generations
    from idglow.generate.files import SamplingOptions, generate_benchmark
    from idglow.generate.pipeline import IdGlowPipeline

    args = parse_args()
    torch.set_num_threads(args.threads)
    out, cast = Path(args.out), Path(args.cast)
    result: dict = {"run": args.run, "limit": args.limit, "steps": args.steps, "benchmarks": {}}
    for bench in BENCHMARKS:
        manifest = cast / f"{bench}.jsonl"
        ids = {r["id"] for r in load_manifest(manifest, "benchmark")[: args.limit]}
        mu = read_mu_real(manifest, required=True)
        folders, seconds = {}, {}
        for precision in ("fp32", "bf16"):
            pipe = IdGlowPipeline.from_run(args.run, precision=precision)
            where = out / precision / bench
            began = time.perf_counter()
            generate_benchmark(pipe, args.run, manifest, SamplingOptions(seed=0, steps=args.steps), where, {}, ids=ids,
                               progress=False)
            seconds[precision] = time.perf_counter() - began
            folders[precision] = evaluate_generations(where, manifest, where / "eval", progress=False, ids=ids)
        rows = {p: _per_record(out / p / bench / "eval" / "scores.jsonl", mu) for p in ("fp32", "bf16")}
        order = sorted(rows["fp32"])
        paired = {m: paired_difference(np.array([rows["fp32"][i][m] for i in order]), np.array([rows["bf16"][i][m] for i in order]))
                  for m in PAIRED[bench]}
        result["benchmarks"][bench] = {"records": len(order), "paired_bf16_minus_fp32": paired, "seconds": seconds,
                                       "folder": {p: {k: folders[p].get(k) for k in FOLDER} for p in folders}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "precision_quality.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| benchmark | metric | fp32 | bf16 | bf16 - fp32, paired [95% CI] |\n|---|---|---|---|---|")
    for bench, r in result["benchmarks"].items():
        for metric, key in (("facesim", "facesim_norm"), ("count_ok", "count_accuracy"), ("child", "child_rate")):
            if metric in r["paired_bf16_minus_fp32"]:
                d = r["paired_bf16_minus_fp32"][metric]
                print(f"| {bench} | {key} | {r['folder']['fp32'][key]:.3f} | {r['folder']['bf16'][key]:.3f} | "
                      f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] |")
        for key in ("frechet_judge", "artifact_score"):
            print(f"| {bench} | {key} | {r['folder']['fp32'][key]:.3f} | {r['folder']['bf16'][key]:.3f} | (one value per folder) |")
        print(f"| {bench} | generation seconds | {r['seconds']['fp32']:.1f} | {r['seconds']['bf16']:.1f} | "
              f"{r['seconds']['fp32'] / r['seconds']['bf16']:.2f}x |")


if __name__ == "__main__":
    main()
