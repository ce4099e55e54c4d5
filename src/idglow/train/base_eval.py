"""Loading a trained base model and scoring its samples on held-out captions with the cast judges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, FluxTransformer2DModel
from PIL import Image

from idglow.cast.judge_training import load_judges
from idglow.config import from_dict
from idglow.data.images import CaptionedImages
from idglow.data.manifest import load_manifest
from idglow.eval.cast_quality import cast_quality
from idglow.flow import flux_shift_mu
from idglow.flux_folder import adopt_flux_folder, is_pipeline_folder
from idglow.inference import sample_packed
from idglow.models import IdGlowTransformer
from idglow.models.packing import text_ids
from idglow.representation import build_representation
from idglow.text import build_text_encoder
from idglow.train.config import TrainConfig


def load_base(run: str | Path, dtype: torch.dtype = torch.float32) -> tuple[IdGlowTransformer, TrainConfig]:
    """The model and training config of a finished base run (``run/final/transformer``, ``run/config.json``)
    or of an exported one (``transformer``, ``train_config.json``, as shipped in ``assets/base``)."""
    run = Path(run)
    if is_pipeline_folder(run):
        return load_flux_folder(run, dtype)
    exported = (run / "train_config.json").is_file()
    cfg = from_dict(TrainConfig, json.loads((run / ("train_config.json" if exported else "config.json")).read_text()))
    folder = run / "transformer" if exported else run / "final" / "transformer"
    if exported and cfg.representation.kind == "latents":
        cfg.representation.vae = str(run / "vae")  # an exported model carries its autoencoder
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no final transformer; finish (or resume) the run first")
    backbone = FluxTransformer2DModel.from_pretrained(folder, torch_dtype=dtype, local_files_only=True)
    return IdGlowTransformer(cfg.model, backbone=backbone.float()).eval(), cfg


def load_flux_folder(folder: Path, dtype: torch.dtype = torch.float32) -> tuple[IdGlowTransformer, TrainConfig]:
    """The transformer of a diffusers FLUX folder, with the config that reads its VAE and text encoders."""
    cfg = TrainConfig()
    adopt_flux_folder(cfg, folder)
    backbone = FluxTransformer2DModel.from_pretrained(folder / "transformer", torch_dtype=dtype, local_files_only=True)
    return IdGlowTransformer(cfg.model, backbone=backbone).eval(), cfg


@torch.no_grad()
def sample_captions(model: IdGlowTransformer, cfg: TrainConfig, prompts: list[str], height: int, width: int,
                    steps: int = 24, seed: int = 0, batch: int = 16) -> torch.Tensor:
    """Images [N, 3, H, W] in [-1, 1] for ``prompts``, noise from ``seed``."""
    rep = build_representation(cfg.representation, height, width)
    text = build_text_encoder(cfg.text, cfg.data.max_tokens)
    mu = flux_shift_mu(rep.tokens) if cfg.flow.shift == "resolution" else None
    g = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        states, pooled = text(chunk)
        noise = torch.randn(len(chunk), rep.tokens, rep.channels, generator=g)
        packed = sample_packed(model, noise, states, pooled, rep.image_ids(), text_ids(cfg.data.max_tokens), num_steps=steps, mu=mu)
        out.append(rep.decode(packed).clamp(-1, 1))
    return torch.cat(out)


def evaluate_base(run: str | Path, manifests: list[str], judges: str | Path, num: int = 200, steps: int = 24,
                  seed: int = 0) -> dict:
    """Sample ``num`` held-out captions; detection rate and judge Fréchet distance against their true renders."""
    model, cfg = load_base(run)
    real = CaptionedImages(manifests, progress=False)
    counts = [len(r["subjects"]) for m in manifests for r in load_manifest(m, "sft", check_files=False)]
    index = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:num]
    images, prompts = real.batch(index)
    generated = sample_captions(model, cfg, prompts, *real.size, steps=steps, seed=seed)
    detector = load_judges(judges)["detector"]
    result = cast_quality(detector, generated, images, [counts[i] for i in index.tolist()])
    result.update({"samples": len(prompts), "steps": steps, "manifests": [str(m) for m in manifests]})
    reference = cast_quality(detector, images[: len(images) // 2], images[len(images) // 2 :],
                             [counts[i] for i in index.tolist()][: len(images) // 2])
    result["reference_true_vs_true"] = {"frechet_judge": reference["frechet_judge"],
                                        "detection_rate": reference["detection_rate"]}
    grid = generated[:16].add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy()
    rows = [np.concatenate(list(grid[i : i + 4]), axis=1) for i in range(0, len(grid) - len(grid) % 4, 4)]
    if rows:
        Image.fromarray(np.concatenate(rows, axis=0)).save(Path(run) / "eval_samples.png")
        (Path(run) / "eval_prompts.txt").write_text("\n".join(prompts[:16]) + "\n")
    (Path(run) / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def export_base(run: str | Path, out: str | Path, command: str, commit: str) -> dict:
    """Write a finished base run's transformer as fp16 safetensors (diffusers folder) with its provenance."""
    run, out = Path(run), Path(out)
    model, cfg = load_base(run)
    model.flux.to(torch.float16).save_pretrained(out / "transformer", safe_serialization=True)
    if cfg.representation.kind == "latents":
        vae = AutoencoderKL.from_pretrained(cfg.representation.vae, local_files_only=True)
        vae.to(torch.float16).save_pretrained(out / "vae", safe_serialization=True)
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    provenance = {
        "command": command,
        "commit": commit,
        "steps": records[-1]["step"],
        "wall_seconds": records[-1].get("elapsed_seconds"),
        "final_loss": records[-1]["loss"],
        "train_config": json.loads((run / "config.json").read_text()),
    }
    for name in ("eval.json",):
        if (run / name).is_file():
            provenance["eval"] = json.loads((run / name).read_text())
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    (out / "train_config.json").write_text((run / "config.json").read_text())
    return provenance
