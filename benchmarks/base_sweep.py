"""Short base-model runs from noise: what learns fastest here (width vs depth, learning rate, batch).

Every variant is `configs/synth-base.yaml` (pixels, 4x4 patches) trained from noise for the same
wall-clock budget with one change, then scored by `idglow train base-eval` on held-out captions
(judge Fréchet distance to true renders; share of expected faces the judge detector finds). Runs and
evaluations that already finished are reused, so an interrupted sweep continues where it stopped.

    python benchmarks/base_sweep.py [--minutes 4] [--num 48] [--variants small wide deep ...] [--out runs/base-sweep]

Writes ``OUT/results.json`` and ``OUT/results.md``. Run nothing else CPU-heavy meanwhile: the budget is
wall-clock time, so a busy machine gives a variant fewer steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).parents[1]
# name -> (description, overrides of configs/synth-base.yaml). Parameter counts are matched within ~15%.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "small": ("`small`: 4+4 blocks, width 128 (3.6 M), lr 1e-3, batch 16", []),
    "wide": ("wide: 2+2 blocks, width 192 (4.1 M)",
             ["--model.num_layers", "2", "--model.num_single_layers", "2", "--model.num_attention_heads", "6"]),
    "deep": ("deep: 8+8 blocks, width 96 (3.9 M)",
             ["--model.num_layers", "8", "--model.num_single_layers", "8", "--model.num_attention_heads", "3"]),
    "lr5e-4": ("lr 5e-4", ["--optim.lr", "5.0e-4"]),
    "lr3e-3": ("lr 3e-3", ["--optim.lr", "3.0e-3"]),
    "batch8": ("batch 8", ["--optim.batch_size", "8"]),
    "batch32": ("batch 32", ["--optim.batch_size", "32"]),
}


def run(*argv: str) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True, cwd=ROOT)


def train_and_score(name: str, out: Path, args) -> dict:
    run_dir = out / name
    if not (run_dir / "final").is_dir():
        run("idglow", "train", "base", "--config", "configs/synth-base.yaml", "--out", str(run_dir),
            "--optim.max_minutes", str(args.minutes), "--optim.warmup_steps", "20", "--optim.ema_decay", "0",
            "--log.sample_every", "0", "--log.checkpoint_every", "100000", "--log.progress", "false",
            *VARIANTS[name][1])
    if not (run_dir / "eval.json").is_file():
        run("idglow", "train", "base-eval", "--run", str(run_dir), "--num", str(args.num), "--steps", str(args.steps))
    last = json.loads((run_dir / "log.jsonl").read_text().splitlines()[-1])
    result = json.loads((run_dir / "eval.json").read_text())
    return {"steps": last["step"], "images_per_second": last["images_per_second"], "loss": last["loss"],
            "frechet_judge": result["frechet_judge"], "detection_rate": result["detection_rate"],
            "count_accuracy": result["count_accuracy"]}


def table(rows: dict[str, dict], minutes: float) -> str:
    lines = [f"| variant | steps in {minutes:g} min | images/s | last loss | Fréchet (judge) | faces detected | count acc |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {VARIANTS[name][0]} | {r['steps']} | {r['images_per_second']:.1f} | {r['loss']:.3f} | "
                     f"{r['frechet_judge']:.1f} | {100 * r['detection_rate']:.1f}% | {100 * r['count_accuracy']:.1f}% |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="variants to run")
    parser.add_argument("--minutes", type=float, default=4.0, help="wall-clock training budget of each variant")
    parser.add_argument("--num", type=int, default=48, help="held-out captions sampled per evaluation")
    parser.add_argument("--steps", type=int, default=16, help="Euler steps per evaluation sample")
    parser.add_argument("--out", default="runs/base-sweep", help="folder of the runs and results")
    args = parser.parse_args()
    out = ROOT / args.out
    rows = {name: train_and_score(name, out, args) for name in args.variants}
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "results.md").write_text(table(rows, args.minutes) + "\n")
    print(table(rows, args.minutes))


if __name__ == "__main__":
    sys.exit(main())
