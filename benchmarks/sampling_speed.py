"""Sampling throughput as the number of references N grows: IdGlow's cross-attention branch (identity
K/V cached once per image, or recomputed every step) against in-context concatenation, where the
references' tokens are appended to the image sequence (as UNO and FLUX Kontext do).

Same backbone for all (``small`` preset on 128x64 pixels in 4x4 patches = 512 image tokens, MiniLM
width text), random weights (speed does not depend on training), batch B, S Euler steps per image;
each reference is a 32x32 crop = 64 tokens in the in-context design. Variants run interleaved, round
by round, so drift hits all alike.

    python benchmarks/sampling_speed.py [--refs 1,2,3,4] [--steps 20] [--batch 4] [--rounds 3] [--json out.json]
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

from idglow.flow import euler_sample, sigma_grid
from idglow.generate.sampling import sample_packed
from idglow.models import IdGlowTransformer, ModelConfig
from idglow.models.packing import image_ids, patchify, text_ids
from idglow.utils.config import load_config

HEIGHT, WIDTH, PATCH, CROP, TEXT = 64, 128, 4, 32, 64


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="small")
    p.add_argument("--refs", default="1,2,3,4", help="comma-separated reference counts N")
    p.add_argument("--steps", type=int, default=20, help="Euler steps per image")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3, help="timed repetitions of every variant (median reported)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the results here")
    return p.parse_args()


class Setup:
    """One model and the inputs of every variant."""

    def __init__(self, args: argparse.Namespace, n_values: list[int]):
        torch.manual_seed(0)
        cfg = load_config(ModelConfig, None, ["--preset", args.preset, "--in_channels", str(3 * PATCH * PATCH),
                                              "--text_dim", "384", "--identity.max_refs", str(max(n_values))])
        self.model = IdGlowTransformer(cfg).eval()
        with torch.no_grad():  # a trained branch: zero outputs would be unrealistically cheap to skip
            for m in self.model.identity.cross_attention.values():
                m.to_out.weight.normal_(std=0.02)
        b, g = args.batch, torch.Generator().manual_seed(0)
        self.noise = torch.randn(b, (HEIGHT // PATCH) * (WIDTH // PATCH), 3 * PATCH * PATCH, generator=g)
        self.text = torch.randn(b, TEXT, 384, generator=g)
        self.pooled = torch.randn(b, 384, generator=g)
        self.img_ids, self.txt_ids = image_ids(HEIGHT, WIDTH, patch=PATCH), text_ids(TEXT)
        self.crops = {n: torch.rand(b, n, 3, CROP, CROP, generator=g) * 2 - 1 for n in n_values}
        self.steps = args.steps

    @torch.no_grad()
    def idglow(self, n: int, cache: bool) -> None:
        identity = self.model.encode_identity(self.crops[n])  # reference encoding is part of every image's cost
        sample_packed(self.model, self.noise, self.text, self.pooled, self.img_ids, self.txt_ids, identity=identity,
                      task="group", num_steps=self.steps, cache_kv=cache, mu=None)

    @torch.no_grad()
    def bare(self) -> None:
        sample_packed(self.model, self.noise, self.text, self.pooled, self.img_ids, self.txt_ids, num_steps=self.steps)

    @torch.no_grad()
    def in_context(self, n: int) -> None:
        """Reference tokens appended to the image sequence; positions offset past the image (UNO-style)."""
        crops = self.crops[n]
        b = crops.shape[0]
        ref_tokens = patchify(crops.flatten(0, 1), PATCH).reshape(b, -1, 3 * PATCH * PATCH)
        side = CROP // PATCH
        ref_ids = torch.cat([image_ids(CROP, CROP, patch=PATCH) + torch.tensor([0.0, HEIGHT // PATCH + k * side,
                                                                                  WIDTH // PATCH + k * side])
                             for k in range(n)])
        ids = torch.cat([self.img_ids, ref_ids])
        image_tokens = self.noise.shape[1]

        def velocity(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            out = self.model.flux(hidden_states=torch.cat([x, ref_tokens], 1), timestep=sigma,
                                  encoder_hidden_states=self.text, pooled_projections=self.pooled, img_ids=ids,
                                  txt_ids=self.txt_ids, return_dict=False)[0]
            return out[:, :image_tokens]

        euler_sample(velocity, self.noise, sigma_grid(self.steps))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(setup: Setup, n_values: list[int], rounds: int) -> dict[str, float]:
    variants = {"bare (N = 0)": setup.bare}
    for n in n_values:
        variants[f"idglow cached N={n}"] = lambda n=n: setup.idglow(n, True)
        variants[f"idglow uncached N={n}"] = lambda n=n: setup.idglow(n, False)
        variants[f"in-context N={n}"] = lambda n=n: setup.in_context(n)
    for fn in variants.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times[name].append(_timed(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def table(seconds: dict[str, float], n_values: list[int], batch: int) -> str:
    bare = seconds["bare (N = 0)"]
    lines = ["| N refs | IdGlow, cached K/V: images/s (x bare time) | IdGlow, K/V every step | in-context concatenation |",
             "|---|---|---|---|",
             f"| 0 (bare FLUX) | {batch / bare:.2f} (1.00) | – | – |"]
    for n in n_values:
        cells = [seconds[f"{kind} N={n}"] for kind in ("idglow cached", "idglow uncached", "in-context")]
        lines.append(f"| {n} | " + " | ".join(f"{batch / s:.2f} ({s / bare:.2f})" for s in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    n_values = [int(x) for x in args.refs.split(",")]
    setup = Setup(args, n_values)
    seconds = measure(setup, n_values, args.rounds)
    print(f"preset {args.preset}, {HEIGHT}x{WIDTH} pixels in {PATCH}x{PATCH} patches, batch {args.batch}, {args.steps} steps, "
          f"{CROP}px references ({(CROP // PATCH) ** 2} tokens each in-context), {args.threads} threads, "
          f"{platform.processor() or platform.machine()}; medians of {args.rounds} rounds")
    print(table(seconds, n_values, args.batch))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"setup": vars(args), "seconds_per_batch": seconds}, f, indent=2)


if __name__ == "__main__":
    main()
