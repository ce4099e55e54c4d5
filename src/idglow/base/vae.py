"""``idglow train vae``: a small diffusers ``AutoencoderKL`` trained on cast images.

Loss: L1 reconstruction plus a small KL term. At the end the latent scaling factor is set to
1 / std of the training latents (diffusers' convention), and the model is saved as a diffusers
folder (safetensors + config.json), ready for ``representation.kind: latents``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from tqdm.auto import tqdm

from idglow.data.images import CaptionedImages
from idglow.utils.config import option, require_min, to_dict
from idglow.utils.defaults import SFT_TRAIN


@dataclasses.dataclass
class VaeConfig:
    """Autoencoder size and training."""

    out: str = option("runs/vae", "run folder; the model goes to OUT/vae")
    manifests: list[str] = option(help="SFT manifests whose images train the autoencoder",
                                  factory=lambda: list(SFT_TRAIN))
    channels: list[int] = option(help="encoder widths; the downsampling factor is 2^(len - 1)", factory=lambda: [32, 64, 64])
    latent_channels: int = option(4, "latent channels")
    steps: int = option(2000, "optimisation steps")
    max_minutes: float = option(0.0, "stop after this much wall-clock time (0 = no limit)")
    batch_size: int = option(32, "images per step")
    lr: float = option(1e-3, "AdamW learning rate")
    kl_weight: float = option(1e-6, "weight of the KL term")
    seed: int = option(0, "random seed")

    def validate(self) -> None:
        if len(self.channels) < 2:
            raise ValueError(f"channels: need at least 2 levels, got {self.channels}")
        require_min(self, 1, "latent_channels", "steps", "batch_size")


def build_vae(cfg: VaeConfig) -> AutoencoderKL:
    levels = len(cfg.channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=cfg.latent_channels, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(cfg.channels), norm_num_groups=min(16, min(cfg.channels)), mid_block_add_attention=False,
    )


def train_vae(cfg: VaeConfig, progress: bool = True) -> dict:
    """Train, set the scaling factor, save to ``cfg.out/vae``; returns reconstruction statistics."""
    cfg.validate()
    torch.manual_seed(cfg.seed)
    data = CaptionedImages(cfg.manifests, progress=progress)
    vae = build_vae(cfg)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    deadline = time.perf_counter() + 60 * cfg.max_minutes if cfg.max_minutes > 0 else float("inf")
    start, step, l1 = time.perf_counter(), 0, float("nan")
    for step in tqdm(range(1, cfg.steps + 1), desc="vae", disable=not progress):
        images, _ = data.batch(torch.randint(len(data), (cfg.batch_size,), generator=g))
        posterior = vae.encode(images).latent_dist
        recon = vae.decode(posterior.sample(generator=g)).sample
        loss_l1 = (recon - images).abs().mean()
        loss = loss_l1 + cfg.kl_weight * posterior.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        l1 = 0.98 * l1 + 0.02 * loss_l1.item() if step > 1 else loss_l1.item()
        if time.perf_counter() > deadline:
            break
    vae.eval()
    with torch.no_grad():
        images, _ = data.batch(torch.arange(min(256, len(data))))
        latents = vae.encode(images).latent_dist.mode()
        vae.register_to_config(scaling_factor=float(1.0 / latents.std()), shift_factor=float(latents.mean()))
        psnr = -10 * torch.log10(((vae.decode(latents).sample - images) / 2).pow(2).mean())
    out = Path(cfg.out)
    vae.save_pretrained(out / "vae", safe_serialization=True)
    stats = {"steps": step, "seconds": time.perf_counter() - start, "train_l1_ema": l1, "psnr_db_first_256": float(psnr),
             "latent_shape": list(latents.shape[1:]), "config": to_dict(cfg)}
    (out / "vae_train.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats
