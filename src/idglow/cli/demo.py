"""``idglow demo``: the whole method on the synthetic cast, ending in report.html."""

from __future__ import annotations

import argparse

from idglow.cli.registry import command
from idglow.utils.defaults import BASE, JUDGES, PRECISIONS


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole method on the synthetic cast, ending in report.html."""
    import os

    from idglow.demo import run_demo
    from idglow.utils.defaults import PRECISION_ENV as ENV

    if args.precision:  # every stage builds its own pipelines; they read the process default
        os.environ[ENV] = args.precision

    run_demo(args.out, preset=args.preset, force=args.force, base=args.base, judges=args.judges,
             train_judges=args.train_judges)
    return 0


def register(sub) -> None:
    """``idglow demo``."""
    p = command(sub, "demo", cmd_demo, "the whole method on the synthetic cast, ending in a report (report.html)",
                "Build the cast, compute mu_real with the shipped judges, run SFT from the shipped base model, build DPO "
                "pairs, run DPO, one prompt-refine round, evaluate both held-out benchmarks, and write OUT/report.html. "
                "Every budget is in steps, so the same command gives the same metrics on any machine; the time is "
                "estimated before and reported after. Re-running reuses finished stages; --force redoes them. Preset "
                "default: about 12 minutes on 2 CPU cores; quick: under 2 minutes (a smoke run, barely trained models). "
                "Sampling runs in bf16 autocast where the CPU has AVX512-BF16 or AMX (--precision fp32 turns it off).")
    p.add_argument("--preset", choices=["default", "quick"], default="default", help="sizes and budgets (default: default)")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--force", action="store_true", help="redo every stage instead of reusing finished ones")
    p.add_argument("--base", default=BASE, help=f"the shipped base model (default: {BASE})")
    p.add_argument("--judges", default=JUDGES, help=f"the shipped judges (default: {JUDGES}); ignored with --train-judges")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="arithmetic of every sampling stage: auto = bf16 where the CPU makes it fast, else fp32 "
                        "(default: $IDGLOW_PRECISION or auto); training stays fp32")
    p.add_argument("--train-judges", action="store_true",
                   help="train the judges (detector, embedders, age and colour) here with the preset's sizes "
                        "(default preset: about 2.5 more minutes) instead of using the shipped ones")
