"""``idglow generate`` and ``idglow eval``: the generation and evaluation subcommands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from idglow.cli.registry import (check_guidance_interval, chosen_device, command, device_option, group,
                                 guidance_interval_option, non_negative_float, non_negative_int, positive_float,
                                 positive_int)
from idglow.faces import BACKENDS
from idglow.utils.defaults import JUDGES, PRECISIONS


def cmd_generate(args: argparse.Namespace) -> int:
    """Images from a trained run: one prompt with reference files, or every record of a benchmark."""
    from idglow.generate.files import (
        SamplingOptions,
        check_name,
        generate_benchmark,
        generate_one,
        override_schedules,
        reference_files,
    )
    from idglow.generate.pipeline import IdGlowPipeline
    from idglow.runs.load import check_run

    check_name(args.name)
    check_guidance_interval(args.id_guidance_interval)
    if bool(args.benchmark) == bool(args.prompt):
        raise ValueError("give either --benchmark MANIFEST or --prompt TEXT with --refs")
    if args.prompt and not args.refs:
        raise ValueError("refs: --prompt needs --refs (image files or a folder)")
    files = reference_files(args.refs) if args.prompt else None  # bad input fails before the model loads
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"out: {args.out} is a file; give a folder")
    check_run(args.run)
    import torch

    device = chosen_device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype or ("bf16" if device.startswith("cuda") else "fp32")]
    pipe = IdGlowPipeline.from_run(args.run, args.height, args.width, device=device, dtype=dtype, precision=args.precision)
    id_guidance, interval, overrides = _sampler(args, pipe)
    schedule = override_schedules(pipe, overrides)
    options = SamplingOptions(seed=args.seed, steps=args.steps, id_guidance=id_guidance, id_guidance_interval=interval)
    out = Path(args.out)
    if args.benchmark:
        counts = generate_benchmark(pipe, args.run, args.benchmark, options, out, schedule, limit=args.limit, batch=args.batch)
        print(f"wrote {counts['generated']} images to {out} ({counts['skipped']} already there, skipped)")
    else:
        path = generate_one(pipe, args.run, args.prompt, files, args.task, options, out, args.name, schedule)
        print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def _sampler(args: argparse.Namespace, pipe) -> tuple[float, list[float] | None, list[str]]:
    """Identity guidance, the sigma interval it is limited to and gate overrides: those given, else what the model
    folder recommends for the task (``sampler.json``; none for a training run), else guidance 1 at every step and the
    trained gate. A guidance given without an interval applies at every step. Says which on stdout."""
    from idglow.data.manifest import load_manifest
    from idglow.runs.sampler import intervals_for, settings_for

    tasks = [args.task] if args.prompt else sorted({r["task"] for r in load_manifest(Path(args.benchmark), "benchmark")})
    recommended = {} if args.sampler == "trained" else pipe.recommended
    guidance, overrides = settings_for(recommended, tasks)
    if args.id_guidance is None and len(set(guidance)) > 1:
        raise ValueError(f"id-guidance: {args.benchmark} mixes tasks ({', '.join(tasks)}) whose recommended guidance "
                         f"differs ({', '.join(f'{g:g}' for g in guidance)}); give --id-guidance, or --sampler trained")
    id_guidance = guidance[0] if args.id_guidance is None else args.id_guidance
    intervals = intervals_for(recommended, tasks) if args.id_guidance is None else None
    if args.id_guidance_interval is None and intervals is not None and len(set(intervals)) > 1:
        raise ValueError(f"id-guidance-interval: {args.benchmark} mixes tasks ({', '.join(tasks)}) whose recommended "
                         "guidance intervals differ; give --id-guidance-interval, or --sampler trained")
    interval = args.id_guidance_interval or (list(intervals[0]) if intervals else None)
    overrides = overrides if args.schedule is None else args.schedule
    chosen = [t for t in tasks if t in recommended and (args.id_guidance is None or args.schedule is None)]
    origin = "; ".join(recommended[t].source for t in chosen) or "given or trained"
    where = "" if interval is None else " at sigma {:g}-{:g}".format(*interval)
    print(f"sampler: identity guidance {id_guidance:g}{where}, gate {', '.join(overrides) or 'as trained'} ({origin})")
    return id_guidance, None if interval is None else [float(x) for x in interval], list(overrides)


def cmd_eval(args: argparse.Namespace) -> int:
    """Score a folder of generations against its benchmark, or compare earlier evaluations."""
    from idglow.eval.report import compare, evaluate_generations

    if args.compare:
        print(compare(args.compare, args.out or "runs/compare"))
        return 0
    if not (args.generations and args.benchmark):
        raise ValueError("give --generations DIR and --benchmark MANIFEST (or --compare EVAL_DIR ...)")
    if args.against and args.backend != "synth":
        raise ValueError("against: the group-level score uses the cast judges; it needs --backend synth")
    out = args.out or str(Path(args.generations) / "eval")
    metrics = evaluate_generations(args.generations, args.benchmark, out, backend=args.backend, judges=args.judges,
                                   model_dir=args.model_dir, mu_real=args.mu_real, skip_missing=args.skip_missing,
                                   skip_bad=args.skip_bad)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=2))
    print(f"wrote {out}/metrics.json, metrics.md, scores.jsonl, by_size.png")
    if args.against:
        print(json.dumps(_win_rate(args, out), indent=2))
        print(f"wrote {out}/win_rate.json")
    return 0


def _win_rate(args: argparse.Namespace, out: str) -> dict:
    """Group-level scores of --generations and --against (same records, same seeds) and the win rate."""
    from idglow.cast.judge_training import load_judges
    from idglow.eval.preference import benchmark_group_scores, win_rate
    from idglow.utils.io import atomic_write

    judges = load_judges(args.judges)
    mine = benchmark_group_scores(args.generations, args.benchmark, judges, ids=_generated_ids(args.generations))
    theirs = benchmark_group_scores(args.against, args.benchmark, judges, ids=set(mine))
    result = {"generations": args.generations, "against": args.against, **win_rate(mine, theirs),
              "group_score": sum(mine.values()) / len(mine), "group_score_against": sum(theirs.values()) / len(theirs)}
    atomic_write(Path(out) / "win_rate.json", lambda p: p.write_text(json.dumps(result, indent=2) + "\n"))
    return result


def _generated_ids(folder: str) -> set[str]:
    return {p.stem for p in Path(folder).glob("*.png") if p.with_suffix(".json").is_file()}


def cmd_bench_build(args: argparse.Namespace) -> int:
    """Benchmark manifests from a folder of face photos."""
    from idglow.eval.bench_build import build_benchmarks
    from idglow.faces import load_backend

    summary = build_benchmarks(args.faces, args.out, load_backend(args.backend, judges=args.judges, model_dir=args.model_dir),
                               sizes=tuple(args.sizes), per_size=args.per_size, expand=args.expand, size=args.size,
                               seed=args.seed)
    print(json.dumps({k: v for k, v in summary.items() if k != "rejected_files"}, indent=2))
    for reason, files in summary["rejected_files"].items():
        if files:
            print(f"rejected ({reason}): {', '.join(files)}")
    print(f"wrote {args.out}/group-fusion.jsonl, age-group.jsonl, refs/ and build.json")
    return 0


def register(sub) -> None:
    """``idglow generate``, ``idglow eval`` and ``idglow bench build``."""
    p = command(sub, "generate", cmd_generate, "generate images with a trained SFT or DPO run (PNG + JSON sidecar each)",
                "Generate with a trained run: one image from --prompt and --refs, or every record of a benchmark "
                "manifest (re-running skips images already written).")
    p.add_argument("--run", required=True, help="a finished run folder of `idglow train sft` or `train dpo`")
    p.add_argument("--out", default="runs/generate", help="output folder (default: runs/generate)")
    p.add_argument("--benchmark", help="benchmark manifest: generate every record as <id>.png")
    p.add_argument("--limit", type=positive_int, help="only the first N records of the benchmark")
    p.add_argument("--prompt", help="one prompt (with --refs)")
    p.add_argument("--refs", nargs="+", metavar="PATH", help="reference face images or folders of them, left to right")
    p.add_argument("--task", choices=["group", "age"], default="group", help="group fusion or age transformation (default: group)")
    p.add_argument("--name", default="image", help="file name (without .png) of a single image (default: image)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="noise seed; benchmark record k uses seed + k (default: 0)")
    p.add_argument("--steps", type=positive_int, default=20, help="Euler steps (default: 20)")
    p.add_argument("--id-guidance", type=non_negative_float, default=None,
                   help="identity guidance g: v_none + g (v_id - v_none); 1 = off (default: the model folder's "
                        "recommendation for the task, see --sampler; else 1)")
    guidance_interval_option(p, "the model folder's recommendation for the task when --id-guidance is not given, else "
                                "every step")
    p.add_argument("--schedule", action="append", metavar="KEY=VALUE",
                   help="override the gate, e.g. group.kind=constant or age.sigma_lo=0.2 (repeatable; analytic gates "
                        "only; default: the model folder's recommendation for the task, see --sampler)")
    p.add_argument("--sampler", choices=["recommended", "trained"], default="recommended",
                   help="defaults for --id-guidance and --schedule: recommended = the settings in the model folder's "
                        "sampler.json for the task (the best held-out FaceSim/mu that keeps count accuracy >= 0.9 / "
                        "child rate >= 0.85; `idglow train export --scores` writes it); trained = guidance 1 and the "
                        "gate the model was trained with (default: recommended)")
    p.add_argument("--height", type=positive_int, default=64, help="image height in pixels (default: 64)")
    device_option(p)
    p.add_argument("--dtype", choices=["fp32", "bf16"], help="weights (default: bf16 on CUDA, fp32 on the CPU)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="arithmetic of sampling: auto = bf16 autocast where the CPU has AVX512-BF16 or AMX (or on a bf16 "
                        "GPU), else fp32; fp32 for bit-exact comparisons with older runs (default: $IDGLOW_PRECISION or auto)")
    p.add_argument("--width", type=positive_int, default=128, help="image width in pixels (default: 128)")
    p.add_argument("--batch", type=positive_int, default=16, help="images per forward pass (default: 16)")

    p = command(sub, "eval", cmd_eval, "score generations against a benchmark (FaceSim, ID-Conf, count, swaps, ...)",
                "Detect, embed and Hungarian-match faces of a folder of generations (<id>.png) against its benchmark "
                "manifest, and write metrics.json, metrics.md, scores.jsonl and plots. --compare makes one table and "
                "plots from earlier evaluations.")
    p.add_argument("--generations", help="folder of <record id>.png images (as `idglow generate --benchmark` writes)")
    p.add_argument("--benchmark", help="the benchmark manifest the images were generated from")
    p.add_argument("--backend", choices=BACKENDS, default="synth",
                   help="face backend: synth (cast judges), dlib (real photos, offline), insightface (--model-dir)")
    p.add_argument("--judges", default=JUDGES, help=f"cast judges for the synth backend (default: {JUDGES})")
    p.add_argument("--model-dir", help="local insightface model folder (insightface backend)")
    p.add_argument("--mu-real", type=positive_float, help="FaceSim of true photos to normalise by (default: <benchmark>.mu_real.json)")
    p.add_argument("--skip-missing", action="store_true", help="score the images present; count records without one")
    p.add_argument("--skip-bad", action="store_true", help="count and skip unreadable images instead of stopping")
    p.add_argument("--against", metavar="GENERATIONS", help="another folder of the same records and seeds (e.g. the SFT "
                   "model's): also write the group-level score of both and the win rate with a 95%% bootstrap interval")
    p.add_argument("--compare", nargs="+", metavar="EVAL", help="eval folders (or metrics.json files) to put in one table")
    p.add_argument("--out", help="output folder (default: GENERATIONS/eval; with --compare: runs/compare)")

    bench = group(sub, "bench", "benchmarks from your own face photos", "Benchmarks from your own photos.")
    p = command(bench, "build", cmd_bench_build, "group-fusion and age-group manifests from a folder of face photos",
                "Detect and crop the face of every photo in --faces (one person per photo; photos with zero or several "
                "faces are rejected, counted and listed), then sample identity sets of sizes 2-4 with left-to-right "
                "prompts.", full_name="bench build")
    p.add_argument("--faces", required=True, help="folder of face photos, one person each (e.g. CelebA-HQ)")
    p.add_argument("--out", default="data/bench", help="output folder (default: data/bench)")
    p.add_argument("--backend", choices=BACKENDS, default="dlib", help="face detector (default: dlib)")
    p.add_argument("--judges", default=JUDGES, help="cast judges for the synth backend")
    p.add_argument("--model-dir", help="local insightface model folder (insightface backend)")
    p.add_argument("--sizes", type=int, nargs="+", default=[2, 3, 4], choices=[2, 3, 4], help="group sizes (default: 2 3 4)")
    p.add_argument("--per-size", type=positive_int, default=50, help="identity sets per group size and benchmark (default: 50)")
    p.add_argument("--expand", type=positive_float, default=1.6, help="crop side as a multiple of the face box (default: 1.6)")
    p.add_argument("--size", type=positive_int, default=128, help="side of the saved reference crops in pixels (default: 128)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the set sampling (default: 0)")
