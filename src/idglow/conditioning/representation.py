"""What the transformer models: pixels cut into patches, or latents of a small autoencoder.

Both map images [B, 3, H, W] in [-1, 1] to packed tokens [B, S, C] and back, and give the token
grid's position ids. Latents come from a diffusers ``AutoencoderKL`` trained on the cast
(``idglow train vae``), scaled to unit variance and packed 2x2 as in FLUX.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL

from idglow.models.packing import image_ids, patchify, unpatchify


class PixelSpace:
    """Images cut into ``patch`` x ``patch`` tokens of ``3 * patch**2`` channels."""

    def __init__(self, height: int, width: int, patch: int):
        if height % patch or width % patch:
            raise ValueError(f"representation.patch: {patch} does not divide the image size {width}x{height}")
        self.height, self.width, self.patch = height, width, patch
        self.channels = 3 * patch * patch
        self.tokens = (height // patch) * (width // patch)
        self.name = f"pixels:{patch}"

    def to(self, device) -> PixelSpace:
        return self

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return patchify(images, self.patch)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        return unpatchify(tokens, self.height, self.width, self.patch)

    def image_ids(self, device="cpu") -> torch.Tensor:
        return image_ids(self.height, self.width, device, patch=self.patch)


class LatentSpace:
    """Latents of a trained ``AutoencoderKL`` (folder with ``config.json`` + safetensors), packed 2x2."""

    def __init__(self, height: int, width: int, vae_path: str | Path):
        path = Path(vae_path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"representation.vae: no diffusers autoencoder under {path}; run `idglow train vae`")
        self.vae = AutoencoderKL.from_pretrained(path, local_files_only=True).float().eval().requires_grad_(False)
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.height, self.width = height // factor, width // factor
        if self.height % 2 or self.width % 2:
            raise ValueError(f"representation.vae: latents of {width}x{height} ({self.width}x{self.height}) cannot be packed 2x2")
        self.scale, self.shift = self.vae.config.scaling_factor, self.vae.config.shift_factor or 0.0
        self.channels = 4 * self.vae.config.latent_channels
        self.tokens = (self.height // 2) * (self.width // 2)
        self.name = f"vae:{path.resolve()}:{width}x{height}"

    def to(self, device) -> LatentSpace:
        """Run the autoencoder on ``device`` (inputs are moved there; outputs stay there)."""
        self.vae.to(device)
        return self

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] -> packed latent tokens [B, S, C] on the CPU (float32)."""
        param = next(self.vae.parameters())
        latents = self.vae.encode(images.to(param.device, param.dtype)).latent_dist.mode().float()
        return patchify((latents - self.shift) * self.scale, 2).cpu()

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        # Differentiable (the identity loss decodes x0_hat); callers that sample wrap it in no_grad.
        param = next(self.vae.parameters())
        latents = unpatchify(tokens, self.height, self.width, 2) / self.scale + self.shift
        return self.vae.decode(latents.to(param.device, param.dtype)).sample.to(tokens.device).float()

    def image_ids(self, device="cpu") -> torch.Tensor:
        return image_ids(self.height, self.width, device, patch=2)


def build_representation(config, height: int, width: int) -> PixelSpace | LatentSpace:
    """The representation of ``config`` (a ``RepresentationConfig``) for H x W images."""
    if config.kind == "pixels":
        return PixelSpace(height, width, config.patch)
    return LatentSpace(height, width, config.vae)
