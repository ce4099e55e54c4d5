"""Cost of the identity branch relative to the bare FLUX transformer (``small`` preset by default).

Measures, in one process and interleaved round by round (so drift hits every variant alike):

- a training step: forward, flow-matching loss, backward and AdamW step, reference encoding included;
  ``--train full`` trains every parameter, ``--train lora`` trains LoRA (rank 16) plus the identity branch;
- a sampling step: one no-grad forward with the identity K/V cached (computed once per image);
- the once-per-image cost of encoding references and caching K/V.

Each for N = 0, 1, 2, 4, 8 references per sample, reported as median seconds and ratio to bare. ``--encoder``
picks the identity encoder: ``conv`` reads crops; ``embedding`` and ``embedding_map`` read rows of frozen-embedder
output (random here: the frozen embedder runs once per reference, before training and once per image in sampling, so
it is not in a step).

    python benchmarks/identity_overhead.py [--preset small] [--batch 4] [--latent 32] [--encoder conv] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from idglow.flow import add_noise, flow_matching_loss, sample_sigmas, velocity_target
from idglow.models import IdGlowTransformer, ModelConfig
from idglow.models.packing import image_ids, pack_latents, text_ids
from idglow.utils.config import load_config


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="small")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--latent", type=int, default=32, help="latent side (packed tokens = (latent / 2) ** 2)")
    p.add_argument("--text-tokens", type=int, default=32)
    p.add_argument("--crop", type=int, default=32, help="reference crop side in pixels")
    p.add_argument("--refs", default="0,1,2,4,8", help="comma-separated reference counts N")
    p.add_argument("--train", choices=["full", "lora"], default="full")
    p.add_argument("--encoder", choices=["conv", "embedding", "embedding_map"], default="conv",
                   help="identity encoder (embedding encoders get random rows of the width they read)")
    p.add_argument("--train-repeats", type=int, default=10)
    p.add_argument("--sample-repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", help="also write the results here")
    return p.parse_args()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


class Bench:
    """Inputs and step functions for one model and batch shape."""

    def __init__(self, args: argparse.Namespace, n_values: list[int]):
        overrides = ["--preset", args.preset, "--identity.max_refs", str(max(max(n_values), 1)),
                     "--identity.encoder", args.encoder]
        if args.train == "lora":
            overrides += ["--lora.rank", "16"]
        torch.manual_seed(0)
        self.device = args.device
        self.model = IdGlowTransformer(load_config(ModelConfig, None, overrides)).to(args.device)
        fc = self.model.flux.config
        if args.train == "lora":
            trainable = [p for n, p in self.model.flux.named_parameters() if "lora_" in n]
            for n, p in self.model.flux.named_parameters():
                p.requires_grad_("lora_" in n)
        else:
            trainable = list(self.model.flux.parameters())
        self.bare_params = trainable
        self.all_params = trainable + list(self.model.identity.parameters())
        self.opt_bare = torch.optim.AdamW(self.bare_params, lr=1e-5)
        self.opt_all = torch.optim.AdamW(self.all_params, lr=1e-5)
        b, dev = args.batch, args.device
        g = torch.Generator().manual_seed(0)
        self.latents = pack_latents(torch.randn(b, fc.in_channels // 4, args.latent, args.latent, generator=g)).to(dev)
        self.text = torch.randn(b, args.text_tokens, fc.joint_attention_dim, generator=g).to(dev)
        self.pooled = torch.randn(b, fc.pooled_projection_dim, generator=g).to(dev)
        self.img_ids, self.txt_ids = image_ids(args.latent, args.latent, dev), text_ids(args.text_tokens, dev)
        shape = (3, args.crop, args.crop) if args.encoder == "conv" else self.model.identity.encoder.reference_shape()
        self.refs = {n: (torch.rand(b, n, *shape, generator=g) * 2 - 1).to(dev) for n in n_values}
        self.tasks = ["group", "age"] * (b // 2) + ["group"] * (b % 2)
        self.ones = torch.ones(b, device=dev)
        # A trained branch: zero-initialised outputs would let autograd skip nothing, but keep it realistic.
        with torch.no_grad():
            for m in self.model.identity.cross_attention.values():
                m.to_out.weight.normal_(std=0.02)

    def train_step(self, n: int | None) -> None:
        """One optimisation step; ``n=None`` is the bare backbone."""
        self.model.train()
        noise = torch.randn_like(self.latents)
        sigma = sample_sigmas(self.latents.shape[0], "logit_normal", device=self.device)
        x = add_noise(self.latents, noise, sigma)
        identity = None if n is None else self.model.encode_identity(self.refs[n])
        # lam = 1 so every block computes its identity residual (a gate at 0 would skip the work).
        lam = None if n is None else self.ones
        v = self.model(x, sigma, self.text, self.pooled, self.img_ids, self.txt_ids, identity=identity, task=self.tasks, lam=lam)
        loss = flow_matching_loss(v, velocity_target(self.latents, noise), sigma).mean()
        opt = self.opt_bare if n is None else self.opt_all
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def sample_step(self, n: int | None, cond) -> None:
        self.model.eval()
        sigma = torch.full((self.latents.shape[0],), 0.5, device=self.device)
        lam = None if n is None else self.ones
        self.model(self.latents, sigma, self.text, self.pooled, self.img_ids, self.txt_ids, identity=cond, task=self.tasks, lam=lam)

    @torch.no_grad()
    def encode_and_cache(self, n: int):
        return self.model.cache_identity(self.model.encode_identity(self.refs[n]))


def measure(bench: Bench, n_values: list[int], args: argparse.Namespace) -> dict:
    variants: list[int | None] = [None, *n_values]
    train = {v: [] for v in variants}
    sample = {v: [] for v in variants}
    encode = {n: [] for n in n_values}
    conds = {n: bench.encode_and_cache(n) for n in n_values}
    for v in variants:  # warm-up
        bench.train_step(v)
        bench.sample_step(v, None if v is None else conds[v])
    for _ in range(args.train_repeats):
        for v in variants:
            train[v].append(_timed(lambda: bench.train_step(v), args.device))
    for _ in range(args.sample_repeats):
        for v in variants:
            sample[v].append(_timed(lambda: bench.sample_step(v, None if v is None else conds[v]), args.device))
        for n in n_values:
            encode[n].append(_timed(lambda: bench.encode_and_cache(n), args.device))
    med = statistics.median
    return {
        "train_s": {str(v): med(t) for v, t in train.items()},
        "sample_s": {str(v): med(t) for v, t in sample.items()},
        "encode_cache_s": {str(n): med(t) for n, t in encode.items()},
    }


def table(results: dict, n_values: list[int]) -> str:
    bare_t, bare_s = results["train_s"]["None"], results["sample_s"]["None"]
    lines = [
        "| N refs | train step (ms) | ratio | sampling step, cached K/V (ms) | ratio | encode + cache K/V once (ms) |",
        "|---|---|---|---|---|---|",
        f"| bare FLUX | {bare_t * 1e3:.1f} | 1.00 | {bare_s * 1e3:.2f} | 1.00 | - |",
    ]
    for n in n_values:
        t, s, e = results["train_s"][str(n)], results["sample_s"][str(n)], results["encode_cache_s"][str(n)]
        lines.append(f"| {n} | {t * 1e3:.1f} | {t / bare_t:.3f} | {s * 1e3:.2f} | {s / bare_s:.3f} | {e * 1e3:.2f} |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    n_values = [int(x) for x in args.refs.split(",")]
    bench = Bench(args, n_values)
    fc = bench.model.flux.config
    results = measure(bench, n_values, args)
    params = {
        "backbone": sum(p.numel() for n, p in bench.model.flux.named_parameters() if "lora_" not in n),
        "lora": sum(p.numel() for n, p in bench.model.flux.named_parameters() if "lora_" in n),
        "identity_branch": sum(p.numel() for p in bench.model.identity.parameters()),
    }
    header = (
        f"preset {args.preset} ({fc.num_layers}+{fc.num_single_layers} blocks, width {fc.num_attention_heads * fc.attention_head_dim}), "
        f"batch {args.batch}, {(args.latent // 2) ** 2} image + {args.text_tokens} text tokens, {args.crop}px crops, "
        f"encoder {args.encoder}, train={args.train}, device {args.device}, {args.threads} threads, {platform.processor() or platform.machine()}; "
        f"medians of {args.train_repeats} train / {args.sample_repeats} sampling repetitions; params {params}"
    )
    print(header)
    print(table(results, n_values))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"setup": vars(args), "params": params, **results}, f, indent=2)


if __name__ == "__main__":
    main()
