"""``idglow demo``: the whole method on the synthetic cast, ending in report.html."""

from __future__ import annotations

import argparse

from idglow.cli.registry import command
from idglow.utils.defaults import BASE, JUDGES


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole method on the synthetic cast, ending in report.html."""
    from idglow.demo import run_demo

    run_demo(args.out, preset=args.preset, force=args.force, base=args.base, judges=args.judges)
    return 0


def register(sub) -> None:
    """``idglow demo``."""
    p = command(sub, "demo", cmd_demo, "the whole method on the synthetic cast, ending in a report (report.html)",
                "Build the cast, train the judges and the autoencoder, run SFT from the shipped base model, build DPO "
                "pairs, run DPO, one prompt-refine round, evaluate both held-out benchmarks, and write OUT/report.html. "
                "Re-running reuses finished stages; --force redoes them. Preset default: about 30 minutes on 2 CPU "
                "cores; quick: a few minutes (a smoke run, barely trained models).")
    p.add_argument("--preset", choices=["default", "quick"], default="default", help="sizes and budgets (default: default)")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--force", action="store_true", help="redo every stage instead of reusing finished ones")
    p.add_argument("--base", default=BASE, help=f"the shipped base model (default: {BASE})")
    p.add_argument("--judges", default=JUDGES, help="shipped judges, used when the preset does not train them")
