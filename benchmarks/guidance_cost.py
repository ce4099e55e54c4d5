"""What identity guidance costs a sample: none, at every step, and limited to a sigma interval (issue 19).

Identity guidance takes a second forward (the model without references) at each step it guides; limited to an
interval (``--id-guidance-interval``) it takes it only there. Times whole samples of a model folder (default: the
shipped model) on the first records of a cast benchmark, the variants interleaved over ``--rounds``, medians.

    python benchmarks/guidance_cost.py [--run assets/idglow] [--cast data/cast] [--batch 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

VARIANTS = {"guidance 1": (1.0, None), "guidance 1.5 at every step": (1.5, None),
            "guidance 1.5 at sigma 0-0.5": (1.5, (0.0, 0.5))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="assets/idglow", help="a model folder or run")
    p.add_argument("--cast", default="data/cast", help="cast folder: prompts and references of synth-group")
    p.add_argument("--batch", type=int, default=8, help="images per sample call")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3, help="timed repetitions of every variant (median reported)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from idglow.eval.run_eval import _records
    from idglow.generate.pipeline import IdGlowPipeline

    records, refs = _records(Path(args.cast) / "synth-group.jsonl", args.batch)
    pipe = IdGlowPipeline.from_run(args.run)
    prompts, tasks = [r["prompt"] for r in records], [r["task"] for r in records]

    def sample(guidance: float, interval) -> float:
        start = time.perf_counter()
        pipe.sample(prompts, refs, tasks, steps=args.steps, generator=[torch.Generator().manual_seed(k) for k in range(len(prompts))],
                    id_guidance=guidance, id_guidance_interval=interval)
        return time.perf_counter() - start

    sample(1.0, None)  # warm-up
    times = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, (guidance, interval) in VARIANTS.items():
            times[name].append(sample(guidance, interval))
    base = statistics.median(times["guidance 1"])
    result = {name: {"seconds_per_image": statistics.median(t) / len(prompts), "x_guidance_1": statistics.median(t) / base}
              for name, t in times.items()}
    print(f"| sampler ({args.steps} Euler steps, batch {len(prompts)}, {pipe.precision}) | s per image | x guidance 1 |\n|---|---|---|")
    for name, r in result.items():
        print(f"| {name} | {r['seconds_per_image']:.3f} | {r['x_guidance_1']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"run": args.run, "batch": len(prompts), "steps": args.steps,
                                               "rounds": args.rounds, "threads": args.threads, **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
