"""The base text-to-image model of the cast (``idglow train base``): the backbone trained on captioned images.

The stand-in for FLUX.1's pretraining: the identity branch is off, the whole backbone trains with the
flow-matching objective on the cast's captions. Resumable like every stage (see :mod:`idglow.training.loop`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from idglow.cast.crops import to_uint8
from idglow.data.images import CaptionedImages
from idglow.data.streaming import StreamingScenes
from idglow.flow import flow_matching_loss, velocity_target
from idglow.generate.sampling import generate_images
from idglow.models import IdGlowTransformer
from idglow.training.loop import Trainer
from idglow.utils.io import atomic_write


class BaseTrainer(Trainer):
    """Trains the backbone of ``cfg.model`` (a ``TrainConfig``) on ``cfg.data``: captions only, no identity branch."""

    SHARDABLE = False  # the cast's base model is 3.6 M parameters: one process or DDP

    def _load_data(self) -> CaptionedImages | StreamingScenes:
        """The training set (the base model needs images and prompts only): in memory, or read per batch."""
        if self.cfg.data.stream:
            return StreamingScenes(self.cfg.data.manifests)
        return CaptionedImages(self.cfg.data.manifests, progress=self.cfg.log.progress and self.accelerator.is_main_process)

    def _build_model(self) -> IdGlowTransformer:
        """The model with ``requires_grad`` set on what this stage trains (the base model: the backbone)."""
        model = IdGlowTransformer(self.cfg.model)
        model.identity.requires_grad_(False)  # the base model is text-only
        return model

    def _loss(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample terms [B] of dataset items ``index``: ``loss`` (optimised), ``flow`` and ``sigma``."""
        latents, prompts = self._batch(index)
        noisy, noise, sigma = self._noised(latents)
        states, pooled = self.text(prompts)
        with self.autocast():
            velocity = self.model(noisy, sigma, states, pooled, self.img_ids, self.txt_ids)
        flow = flow_matching_loss(velocity, velocity_target(latents, noise), sigma, self.cfg.flow.weighting)
        return {"loss": flow, "flow": flow, "sigma": sigma}

    @torch.no_grad()
    def sample_grid(self, path: Path) -> Path:
        """The first ``log.num_samples`` training prompts, seeds 1234 + i -> a 2-column PNG grid (EMA weights when on)."""
        model = self.accelerator.unwrap_model(self.model).eval()
        if self.ema is not None:
            self.ema.store(self._params())
            self.ema.copy_to(self._params())
        n = min(self.cfg.log.num_samples, len(self.data))
        prompts = self.data.batch(torch.arange(n))[1]
        with self.autocast():
            images = generate_images(model, self.rep, self.text, prompts, [1234 + i for i in range(n)],
                                     num_steps=self.cfg.log.sample_steps, mu=self.mu)
        if self.ema is not None:
            self.ema.restore(self._params())
        model.train()
        tiles = to_uint8(images)
        blank = np.zeros_like(tiles[0])
        rows = [np.concatenate(list(tiles[i : i + 2]) + [blank] * (2 - len(tiles[i : i + 2])), axis=1) for i in range(0, n, 2)]
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG"))
        atomic_write(path.parent / "prompts.txt", lambda tmp: tmp.write_text("\n".join(prompts) + "\n"))
        return path

    def _save_final(self, model: IdGlowTransformer, folder: Path, whole: dict[str, torch.Tensor] | None = None) -> None:
        """The base model's backbone as a diffusers transformer folder."""
        model.flux.save_pretrained(folder / "transformer", safe_serialization=True)
