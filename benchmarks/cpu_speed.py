"""How fast the cast recipes run on this CPU in fp32, bf16 autocast, bf16 with fp32 attention, and compiled.

Four jobs, each timed in every variant, interleaved round by round so that drift hits all alike:

- ``train-base``: one step of the base recipe (the shipped base model's shape, every weight trained):
  forward, flow-matching loss, backward, AdamW; batch 16 of 128x64 scenes (512 image + 64 text tokens).
- ``train-sft``: one step of the demo's SFT recipe (identity branch + LoRA on the frozen shipped base,
  identity loss through the frozen judge), batch 16, via the SFT trainer itself.
- ``sample``: one sampling forward of the SFT model with references (identity K/V cached), batch 16.
- ``score``: the cast judges scoring 16 scenes (detect, embed, age; what `pairs build` and `idglow eval`
  run per generated image), fp32 only: small CNNs one image at a time, and the face matching reads fp32.

Variants: ``fp32``; ``bf16`` (autocast); ``bf16+attn32`` (autocast, attention kept fp32); each of these
compiled with ``torch.compile`` unless ``--no-compile`` (compile time reported separately). The top
operators of each eager variant come from ``torch.profiler``.

    python benchmarks/cpu_speed.py [--rounds 5] [--no-compile] [--json benchmarks/results/cpu_speed.json]

Run it on a quiet machine: two threads, nothing else running.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from idglow.utils.precision import autocast, fast_bf16

VARIANTS = {"fp32": ("fp32", False), "bf16": ("bf16", False), "bf16+attn32": ("bf16", True)}
JOBS = ("train-base", "train-sft", "sample", "score")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="timed repetitions of every (job, variant); median reported")
    p.add_argument("--jobs", default=",".join(JOBS), help="comma-separated subset of " + ", ".join(JOBS))
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants (~1-2 min of compiling each)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--top", type=int, default=6, help="operators listed per eager variant")
    p.add_argument("--json", help="also write the results here")
    return p.parse_args()


def demo_sft_trainer(work: Path, *overrides: str):
    """The demo's SFT trainer (LoRA rank 8, batch 16) on the shipped base, on a quick cast built under ``work``;
    ``overrides`` are more ``--key value`` pairs."""
    from idglow.cast.build import build
    from idglow.cast.config import SynthConfig
    from idglow.demo.presets import PRESETS
    from idglow.recipes.sft import SFTConfig
    from idglow.sft.trainer import SFTTrainer
    from idglow.utils.config import load_config
    from idglow.utils.defaults import BASE, JUDGES

    cast = work / "cast"
    if not (cast / "sft-group-train.jsonl").is_file():
        build(cast, load_config(SynthConfig, None, list(PRESETS["quick"].cast)), progress=False)
    cfg = load_config(SFTConfig, None, [
        "--out", str(work / "sft"), "--base", BASE, "--identity_loss.judges", JUDGES,
        "--data.manifests", f"[{cast / 'sft-group-train.jsonl'},{cast / 'sft-age-train.jsonl'}]",
        "--diagnostics.manifests", f"[{cast / 'sft-group-heldout.jsonl'}]", "--diagnostics.every", "0",
        "--model.identity.encoder", "embedding", "--model.lora.rank", "8", "--optim.batch_size", "16",
        "--log.tensorboard", "false", "--log.progress", "false", *overrides])
    return SFTTrainer(cfg)


class Jobs:
    """The models and inputs of every job, built once; ``step(job, compiled)`` returns one timed callable."""

    def __init__(self, work: Path):
        torch.manual_seed(0)
        self.sft = demo_sft_trainer(work)
        self.base, self.base_optim = self._base_model()
        self.batch = self.sft.order.next()
        self._sample_inputs()

    def _base_model(self):
        from idglow.models import IdGlowTransformer

        # the base model's shape without LoRA, every weight trained; random weights: a step's time does not depend on them
        cfg = self.sft.cfg.model
        model = IdGlowTransformer(dataclasses.replace(cfg, lora=dataclasses.replace(cfg.lora, rank=0)))
        return model.train(), torch.optim.AdamW(model.flux.parameters(), lr=1e-5)

    def _sample_inputs(self) -> None:
        trainer, index = self.sft, self.batch
        latents, prompts = trainer._batch(index)
        self.latents = latents
        self.states, self.pooled = trainer.text(prompts)
        ids, rows, slots = trainer.data.subjects(index)
        from idglow.faces.references import scatter_references

        self.refs, self.mask = scatter_references(trainer.ref_inputs[ids], rows, slots, len(index),
                                                  trainer.cfg.model.identity.max_refs)
        self.task = trainer.data.tasks[index]
        self.sigma = torch.full((len(index),), 0.5)
        self.images = trainer.rep.decode(latents).clamp(-1, 1)

    def step(self, job: str, compiled: bool) -> Callable[[], None]:
        """One call of ``job``; ``compiled``: through a fresh ``torch.compile`` wrapper of its own (one per job and
        variant, so that no variant pays for another's recompilation)."""
        return {"train-base": self._train_base, "train-sft": self._train_sft, "sample": self._sample,
                "score": self._score}[job](compiled)

    def _train_base(self, compiled: bool) -> Callable[[], None]:
        from idglow.flow import add_noise, flow_matching_loss, velocity_target

        model = torch.compile(self.base) if compiled else self.base
        t = self.sft

        def run() -> None:
            noise = torch.randn_like(self.latents)
            sigma = torch.rand(len(noise))
            velocity = model(add_noise(self.latents, noise, sigma), sigma, self.states, self.pooled, t.img_ids, t.txt_ids,
                             task=self.task)
            flow_matching_loss(velocity.float(), velocity_target(self.latents, noise), sigma, "none").mean().backward()
            self.base_optim.step()
            self.base_optim.zero_grad(set_to_none=True)
        return run

    def _train_sft(self, compiled: bool) -> Callable[[], None]:
        t = self.sft
        eager = t.model
        model = torch.compile(eager) if compiled else eager

        def run() -> None:
            t.model = model
            try:
                t._loss(self.batch)["loss"].mean().backward()
                t.optimizer.step()
                t.optimizer.zero_grad(set_to_none=True)
            finally:
                t.model = eager
        return run

    def _sample(self, compiled: bool) -> Callable[[], None]:
        t = self.sft
        model = torch.compile(t.model) if compiled else t.model
        plain = t.accelerator.unwrap_model(t.model)

        @torch.no_grad()
        def run() -> None:
            condition = plain.cache_identity(plain.identity_condition(self.refs, self.mask, self.states))
            model(self.latents, self.sigma, self.states, self.pooled, t.img_ids, t.txt_ids, identity=condition, task=self.task)
        return run

    def _score(self, compiled: bool) -> Callable[[], None]:
        from idglow.cast.judge_training import load_judges
        from idglow.data.manifest import load_manifest
        from idglow.eval.cast_bench import score_image
        from idglow.utils.defaults import JUDGES

        judges = load_judges(JUDGES)
        bench = Path(self.sft.cfg.data.manifests[0]).parent / "synth-group.jsonl"
        records = (load_manifest(bench, "benchmark") * len(self.images))[: len(self.images)]
        refs = [torch.rand(len(r["refs"]), 3, 32, 32) * 2 - 1 for r in records]

        @torch.no_grad()
        def run() -> None:
            for image, ref, record in zip(self.images, refs, records):
                score_image(image, ref, record, judges)
        return run


def top_operators(step: Callable[[], None], precision: str, attention_fp32: bool, top: int) -> list[dict]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        with autocast(precision, "cpu", attention_fp32):
            step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return [{"op": e.key, "ms": e.self_cpu_time_total / 1000} for e in events]


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    jobs = [j for j in args.jobs.split(",") if j]
    unknown = set(jobs) - set(JOBS)
    if unknown:
        raise SystemExit(f"--jobs: unknown {sorted(unknown)}; choose from {list(JOBS)}")
    variants = [(v, False) for v in VARIANTS] + ([] if args.no_compile else [(v, True) for v in VARIANTS])
    with tempfile.TemporaryDirectory() as work:
        setup = Jobs(Path(work))
        # wrappers of one module share its forward's code cache: allow a compilation per variant, no eager fallback
        torch._dynamo.config.recompile_limit = 64
        steps, compile_seconds, top = {}, {}, {}
        for job in jobs:
            for name, compiled in variants:
                if job == "score" and (compiled or name != "fp32"):
                    continue  # per-image small CNNs, and matching reads fp32 cosines: fp32 only
                key = (job, name + (" compiled" if compiled else ""))
                precision, attn32 = VARIANTS[name]
                steps[key] = setup.step(job, compiled)
                began = time.perf_counter()
                with autocast(precision, "cpu", attn32):
                    steps[key]()  # warm-up (and compilation)
                compile_seconds[key] = time.perf_counter() - began
                if not compiled:
                    top[key] = top_operators(steps[key], precision, attn32, args.top)
                print(f"ready: {key[0]} {key[1]} ({compile_seconds[key]:.1f} s first call)", flush=True)
        times: dict[tuple[str, str], list[float]] = {k: [] for k in steps}
        for r in range(args.rounds):
            for key, step in steps.items():
                precision, attn32 = VARIANTS[key[1].split()[0]]
                began = time.perf_counter()
                with autocast(precision, "cpu", attn32):
                    step()
                times[key].append(time.perf_counter() - began)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    rows = []
    for (job, variant), values in times.items():
        ms = 1000 * statistics.median(values)
        ref = 1000 * statistics.median(times[(job, "fp32")])
        rows.append({"job": job, "variant": variant, "median_ms": ms, "speedup_vs_fp32": ref / ms,
                     "min_ms": 1000 * min(values), "max_ms": 1000 * max(values), "rounds": len(values),
                     "first_call_s": compile_seconds[(job, variant)], "top_operators": top.get((job, variant))})
    print("\n| job | variant | median ms | x fp32 | min-max ms | first call s |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['job']} | {row['variant']} | {row['median_ms']:.0f} | {row['speedup_vs_fp32']:.2f} | "
              f"{row['min_ms']:.0f}-{row['max_ms']:.0f} | {row['first_call_s']:.1f} |")
    for row in rows:
        if row["top_operators"]:
            ops = ", ".join(f"{o['op']} {o['ms']:.0f}" for o in row["top_operators"])
            print(f"top ops (ms) {row['job']} {row['variant']}: {ops}")
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                          "torch": torch.__version__, "fast_bf16": fast_bf16("cpu")}, "rows": rows}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
