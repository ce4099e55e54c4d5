"""Configuration of what the transformer is conditioned on and models: the image representation and the prompt encoder."""

from __future__ import annotations

import dataclasses
from typing import Literal

from idglow.utils.config import option


@dataclasses.dataclass
class RepresentationConfig:
    """What the transformer models: pixels cut into patches."""

    kind: Literal["pixels", "latents"] = option(
        "pixels", "pixels: images cut into patch x patch tokens; latents: a trained autoencoder's latents, packed 2x2"
    )
    patch: int = option(4, "pixels only: patch side (tokens = H * W / patch^2, channels = 3 * patch^2)")
    vae: str = option("runs/vae/vae", "latents only: the autoencoder folder written by `idglow train vae`")
    offload: bool = option(
        False, "latents only: keep the autoencoder on the CPU (cached latents need no encoder on the GPU; the identity "
        "loss then decodes on the CPU, so use it with identity_loss.weight 0)")

    def validate(self) -> None:
        if self.patch < 1:
            raise ValueError(f"patch: must be >= 1, got {self.patch}")


@dataclasses.dataclass
class TextConfig:
    """The prompt encoder."""

    kind: Literal["minilm", "flux"] = option(
        "minilm", "minilm: the offline 384-d encoder of the cast; flux: CLIP-L pooled + T5 states of a FLUX folder")
    folder: str | None = option(None, "flux only: the diffusers FLUX folder (SFT sets it from a FLUX `base`)")
    offload: bool = option(False, "flux on CUDA: keep CLIP and T5 on the CPU, moving each to the GPU only while it runs")

    def validate(self) -> None:
        if self.kind == "flux" and not self.folder:
            raise ValueError("folder: the flux text encoder needs a diffusers FLUX folder")
