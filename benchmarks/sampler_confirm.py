"""The shipped model against the minimum bar, on records its recommended sampler was not chosen on (issue 19).

``sampler.json`` picks each task's sampler by FaceSim/mu on ``--limit 100`` records of the held-out benchmark; the same
records then report the score, so the pick's luck is in it. This script scores the recommended sampler of each task
on the *other* records of the benchmark (``idglow train sft-eval --complement``), with several noise seeds, pools the
per-record scores over the seeds (``idglow.eval.pooling``: 95% bootstrap interval over the pooled records) and reads
the minimum bar off them: synth-group FaceSim/mu >= 0.6 (and count accuracy >= 0.9, the floor the sampler was
chosen under); synth-age FaceSim/mu >= 0.5 with child rate >= 0.85.
Finished evaluations are reused, so a re-run continues.

    python benchmarks/sampler_confirm.py [--run assets/idglow] [--seeds 0 1000] [--out benchmarks/results/sampler_confirm]
                                         [--device cuda] [--against benchmarks/results/sampler_confirm-dpo-longer]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from idglow.eval.pooling import difference_text, evaluated, folder_difference, pooled_summary, read_scores
from idglow.runs.sampler import read_sampler, schedule_overrides

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).parents[1]
BENCHMARKS = {"group": "synth-group", "age": "synth-age"}
# task -> [(metric, the minimum bar)]; for groups, count accuracy >= 0.9 is the floor the sampler was chosen under
BARS = {"group": [("facesim_norm", 0.6), ("count_accuracy", 0.9)], "age": [("facesim_norm", 0.5), ("child_rate", 0.85)]}
# what --against compares, per task (plus the set-level Fréchet distance)
COMPARED = {"group": ["facesim_norm", "identification", "count_accuracy", "leakage_rate"],
            "age": ["facesim_norm", "identification", "child_rate", "mini_adult_rate"]}


def check_reused(summary: Path, settings, benchmark: Path, seed: int, args) -> None:
    """Refuse, naming the folder, to reuse an evaluation made under another sampler, benchmark or noise seed than the
    one asked for now (a model re-exported under another rule recommends other settings)."""
    done = json.loads(summary.read_text())
    trained = json.loads((Path(args.run) / "config.json").read_text())["model"]["identity"]["gate"]
    interval = done.get("id_guidance_interval")
    made = (float(done.get("id_guidance", 1.0)), None if interval is None else tuple(interval),
            schedule_overrides(trained, done.get("schedule", trained)), Path(done.get("benchmark", "")), done.get("seed"))
    wanted = (settings.id_guidance, settings.id_guidance_interval, list(settings.schedule), benchmark, seed)
    if made != wanted:
        where = lambda i: "" if i is None else " at sigma {:g}-{:g}".format(*i)  # noqa: E731
        raise SystemExit(f"{summary.parent}: scored with guidance {made[0]:g}{where(made[1])}, schedule {made[2]}, "
                         f"{made[3]}, seed {made[4]}, but now asked for guidance {wanted[0]:g}{where(wanted[1])}, "
                         f"schedule {wanted[2]}, {wanted[3]}, seed {seed}; remove the folder or give another --out")


def evaluate(task: str, seed: int, args) -> Path:
    """The recommended sampler of ``task`` on the records ``--limit`` leaves out, noise seed ``seed`` (reused)."""
    settings = read_sampler(args.run)[task]
    out = Path(args.out) / f"{BENCHMARKS[task]}-seed{seed}"
    if (out / f"{BENCHMARKS[task]}.scores.jsonl").is_file():
        check_reused(out / f"{BENCHMARKS[task]}.json", settings, Path(args.data) / f"{BENCHMARKS[task]}.jsonl", seed, args)
    else:
        command = [sys.executable, "-m", "idglow", "train", "sft-eval", "--run", str(args.run), "--benchmark",
                   str(Path(args.data) / f"{BENCHMARKS[task]}.jsonl"), "--limit", str(args.limit), "--complement",
                   "--id-guidance", f"{settings.id_guidance:g}", "--seed", str(seed), "--out", str(out)]
        if args.device:
            command += ["--device", args.device]
        if settings.id_guidance_interval is not None:
            command += ["--id-guidance-interval", *(f"{x:g}" for x in settings.id_guidance_interval)]
        for item in settings.schedule:
            command += ["--schedule", item]
        print("+", " ".join(command[2:]), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
    return out


def compare(task: str, folders: list[Path], args) -> tuple[dict, list[str]]:
    """This model minus ``--against``'s on the same records and noise seeds: paired bootstrap differences."""
    bench = BENCHMARKS[task]
    other = [Path(args.against) / f"{bench}-seed{seed}" for seed in args.seeds]
    diffs = {key: folder_difference(folders, other, bench, key) for key in COMPARED[task] + ["frechet_judge"]}
    return diffs, [f"| {bench} | {key} | {difference_text(d, 2)} |" for key, d in diffs.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="assets/idglow", help="a model folder with sampler.json (default: assets/idglow)")
    parser.add_argument("--data", default="data/cast", help="the cast (default: data/cast)")
    parser.add_argument("--limit", type=int, default=100, help="the records the sampler was chosen on (default: 100)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1000], help="noise seeds (default: 0 1000)")
    parser.add_argument("--out", default="benchmarks/results/sampler_confirm", help="evaluations and results")
    parser.add_argument("--device", help="where the model samples (default: sft-eval's, cuda when available, else cpu)")
    parser.add_argument("--against", help="another model's --out of this script (same --seeds, --limit): adds this model "
                                          "minus that one, paired over the same records and noise seeds")
    args = parser.parse_args()
    os.chdir(ROOT)
    recommended = read_sampler(args.run)
    missing = [task for task in BENCHMARKS if task not in recommended]
    if missing:
        parser.error(f"--run: {args.run} recommends no sampler for {', '.join(missing)} (no sampler.json entry)")
    missing = [f"{args.against}/{b}-seed{seed}" for b in BENCHMARKS.values() for seed in args.seeds
               if args.against and not evaluated(Path(args.against) / f"{b}-seed{seed}", [b])]
    if missing:  # before any evaluation runs
        parser.error(f"--against: no finished evaluation in {', '.join(missing)} (run this script on that model with "
                     "the same --seeds and --limit first)")
    results, lines, devices, differences = {}, [], set(), []
    for task, bench in BENCHMARKS.items():
        folders = [evaluate(task, seed, args) for seed in args.seeds]
        metrics = [json.loads((f / f"{bench}.json").read_text()) for f in folders]
        mu = metrics[0]["mu_real"]
        devices |= {f"{m.get('device', 'cpu')} {m.get('precision', '')}".strip() for m in metrics}
        pooled = pooled_summary([read_scores(f, bench) for f in folders], mu)
        bars = {key: {"bar": bar, "value": pooled[key], "interval": pooled["intervals"][key], "met": pooled[key] >= bar}
                for key, bar in BARS[task]}
        settings = recommended[task]
        where = "" if settings.id_guidance_interval is None else " at sigma {:g}-{:g}".format(*settings.id_guidance_interval)
        results[bench] = {"sampler": {"id_guidance": settings.id_guidance, "schedule": list(settings.schedule),
                                      **({"id_guidance_interval": list(settings.id_guidance_interval)}
                                         if settings.id_guidance_interval else {})},
                          "records": pooled["images"], "seeds": args.seeds, "bars": bars, "pooled": pooled}
        if args.against:
            results[bench]["against"], rows = compare(task, folders, args)
            differences += rows
        for key, row in bars.items():
            lines.append(f"| {bench} | guidance {settings.id_guidance:g}{where}, {' '.join(settings.schedule) or 'trained gate'} | "
                         f"{key} | {row['value']:.4f} [{row['interval'][0]:.3f}, {row['interval'][1]:.3f}] | "
                         + " / ".join(f"{v:.3f}" for v in pooled["per_seed"][key]) + f" | >= {row['bar']} | "
                         + ("met" if row["met"] else "not met") + " |")
    head = (f"{args.run}, recommended sampler, the records `--limit {args.limit}` leaves out, noise seeds "
            f"{', '.join(map(str, args.seeds))} pooled; one training seed; sampled on {', '.join(sorted(devices))}.\n\n"
            "| benchmark | sampler | metric | pooled [95% interval] | per noise seed | bar | |\n|---|---|---|---|---|---|---|")
    text = head + "\n" + "\n".join(lines) + "\n"
    if differences:
        text += (f"\nMinus {args.against} (the same records and noise seeds; paired 95% bootstrap interval; Fréchet: "
                 "the mean of the seeds' differences):\n\n| benchmark | metric | difference |\n|---|---|---|\n"
                 + "\n".join(differences) + "\n")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (Path(args.out) / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
