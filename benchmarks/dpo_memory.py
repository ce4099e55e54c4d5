"""Peak memory and step time of a DPO step: the adapter-disabled reference against a frozen model copy.

Each mode runs in its own process (so peak memory is that mode's alone): the real ``DPOTrainer``
(``adapter``: the reference is the policy module with the DPO LoRA switched off) and a subclass whose
reference is a second, frozen copy of the SFT model (``copy``, what DPO code without adapters does).
Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU and the process's peak RSS on a CPU.

    python benchmarks/dpo_memory.py [--sft runs/sft-lora] [--pairs data/pairs/pairs.jsonl] [--steps 8] [--batch 8]

Writes ``OUT/results.json`` and ``OUT/results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).parents[1]


def measure(mode: str, args) -> dict:
    """Run ``args.steps`` DPO steps in this process; median step time after ``args.warmup`` steps, peak memory."""
    import torch

    from idglow.dpo.trainer import DPOTrainer
    from idglow.recipes.dpo import DPOConfig
    from idglow.runs.load import load_policy
    from idglow.training.loop import TermStats
    from idglow.utils.config import load_config

    class FrozenCopyDPO(DPOTrainer):
        """Reference = a second frozen copy of the SFT model."""

        def _build_model(self):
            self.reference_copy = load_policy(self.cfg.sft)[0].requires_grad_(False).to(self.accelerator.device)
            return super()._build_model()

        def _reference_velocity(self, inputs, condition):
            return self.reference_copy(*inputs, **condition)

    cfg = load_config(DPOConfig, ROOT / "configs" / "synth-dpo.yaml",
                      ["--sft", args.sft, "--data.manifests", f"[{args.pairs}]", "--out", str(Path(args.out) / mode),
                       "--optim.batch_size", str(args.batch), "--log.progress", "false", "--log.tensorboard", "false",
                       *(["--optim.mixed_precision", "bf16"] if args.precision == "bf16" else [])])
    trainer = (DPOTrainer if mode == "adapter" else FrozenCopyDPO)(cfg)
    cuda = trainer.accelerator.device.type == "cuda"
    modules = [trainer.model] + ([trainer.reference_copy] if mode == "copy" else [])
    params = sum(p.numel() for m in modules for p in m.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for m in modules for p in m.parameters())
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        trainer._train_step(TermStats())
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"mode": mode, "device": str(trainer.accelerator.device), "parameters_held": params, "weight_bytes": weight_bytes,
            "step_seconds": statistics.median(times[args.warmup:]), "peak_bytes": peak,
            "peak_kind": "cuda max_memory_allocated" if cuda else "process peak RSS", "batch_pairs": args.batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sft", default="runs/sft-lora", help="SFT run (default: runs/sft-lora)")
    parser.add_argument("--pairs", default="data/pairs/pairs.jsonl", help="preference manifest")
    parser.add_argument("--steps", type=int, default=8, help="DPO steps per mode (default: 8)")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the median (default: 2)")
    parser.add_argument("--batch", type=int, default=8, help="pairs per step (default: 8)")
    parser.add_argument("--precision", choices=["no", "bf16"], default="no", help="autocast (default: no)")
    parser.add_argument("--out", default="runs/dpo-memory", help="output folder")
    parser.add_argument("--mode", choices=["adapter", "copy"], help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.mode:
        print("RESULT " + json.dumps(measure(args.mode, args)))
        return
    results = []
    for mode in ("adapter", "copy"):
        child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--mode", mode], capture_output=True, text=True)
        if child.returncode != 0:
            raise SystemExit(f"{mode} failed:\n{child.stderr[-3000:]}")
        results.append(json.loads(next(l for l in child.stdout.splitlines() if l.startswith("RESULT "))[7:]))
    lines = ["| reference | parameters held | weights (MiB) | step (s) | peak memory (MiB) | measured as |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['mode']} | {r['parameters_held'] / 1e6:.2f} M | {r['weight_bytes'] / 2**20:.1f} | {r['step_seconds']:.2f} | "
              f"{r['peak_bytes'] / 2**20:.0f} | "
              f"{r['peak_kind']} on {r['device']}, {r['batch_pairs']} pairs/step |" for r in results]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
