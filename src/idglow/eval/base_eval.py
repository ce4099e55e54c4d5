"""Scoring a base model's samples on held-out captions with the cast judges (``idglow train base-eval``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from idglow.cast.crops import to_uint8
from idglow.cast.judge_training import load_judges
from idglow.conditioning.representation import build_representation
from idglow.conditioning.text import build_text_encoder
from idglow.data.images import CaptionedImages, warn_if_trained_at_another_size
from idglow.data.manifest import load_manifest
from idglow.eval.cast_quality import cast_quality
from idglow.flow import flux_shift_mu
from idglow.generate.sampling import generate_images
from idglow.models import IdGlowTransformer
from idglow.recipes.train import TrainConfig
from idglow.runs.load import load_base
from idglow.utils.io import atomic_write


@torch.no_grad()
def sample_captions(model: IdGlowTransformer, cfg: TrainConfig, prompts: list[str], height: int, width: int,
                    steps: int = 24, seed: int = 0, batch: int = 16, init_images: torch.Tensor | None = None,
                    sigma_start: float = 1.0) -> torch.Tensor:
    """Images [N, 3, H, W] in [-1, 1] for ``prompts``; caption i's noise comes from seed ``seed + i``; with
    ``init_images`` [N, 3, H, W], image-to-image from ``sigma_start`` (:func:`generate_images`)."""
    rep = build_representation(cfg.representation, height, width)
    text = build_text_encoder(cfg.text, cfg.data.max_tokens)
    mu = flux_shift_mu(rep.tokens) if cfg.flow.shift == "resolution" else None
    out = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        seeds = [seed + start + i for i in range(len(chunk))]
        init = None if init_images is None else init_images[start : start + batch]
        out.append(generate_images(model, rep, text, chunk, seeds, num_steps=steps, mu=mu, init_images=init,
                                   sigma_start=sigma_start).cpu())
    return torch.cat(out)


def evaluate_base(run: str | Path, manifests: list[str], judges: str | Path, num: int = 200, steps: int = 24,
                  seed: int = 0) -> dict:
    """Sample ``num`` held-out captions; detection rate and judge Fréchet distance against their true renders."""
    model, cfg = load_base(run)
    real = CaptionedImages(manifests, progress=False)
    counts = [len(r["subjects"]) for m in manifests for r in load_manifest(m, "sft", check_files=False)]
    index = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:num]
    if len(index) < 4:  # the true-vs-true reference splits the true renders in two halves of at least 2
        raise ValueError(f"base-eval: at least 4 captions to score, got {len(index)} (--num {num}, "
                         f"{len(real)} in {', '.join(map(str, manifests))})")
    images, prompts = real.batch(index)
    warn_if_trained_at_another_size(cfg.data.manifests, *real.size, ", ".join(map(str, manifests)))
    generated = sample_captions(model, cfg, prompts, *real.size, steps=steps, seed=seed)
    detector = load_judges(judges)["detector"]
    result = cast_quality(detector, generated, images, [counts[i] for i in index.tolist()])
    result.update({"samples": len(prompts), "steps": steps, "manifests": [str(m) for m in manifests]})
    reference = cast_quality(detector, images[: len(images) // 2], images[len(images) // 2 :],
                             [counts[i] for i in index.tolist()][: len(images) // 2])
    result["reference_true_vs_true"] = {"frechet_judge": reference["frechet_judge"],
                                        "detection_rate": reference["detection_rate"]}
    grid = to_uint8(generated[:16])
    rows = [np.concatenate(list(grid[i : i + 4]), axis=1) for i in range(0, len(grid) - len(grid) % 4, 4)]
    if rows:
        sheet = np.concatenate(rows, axis=0)
        atomic_write(Path(run) / "eval_samples.png", lambda p: Image.fromarray(sheet).save(p, format="PNG"))
        atomic_write(Path(run) / "eval_prompts.txt", lambda p: p.write_text("\n".join(prompts[:16]) + "\n"))
    atomic_write(Path(run) / "eval.json", lambda p: p.write_text(json.dumps(result, indent=2) + "\n"))
    return result
