"""FLUX's patch packing and position ids.

``patchify`` generalises diffusers' ``FluxPipeline._pack_latents`` (patch 2, for latents) to any
patch size (e.g. 4 or 8 for pixel space); a test checks it equals diffusers' at patch 2. Position
ids come from ``FluxPipeline._prepare_latent_image_ids``.
"""

from __future__ import annotations

import torch
from diffusers import FluxPipeline


def patchify(x: torch.Tensor, patch: int = 2) -> torch.Tensor:
    """[B, C, H, W] -> tokens [B, (H / p) * (W / p), C * p * p] (row-major over the patch grid)."""
    if x.ndim != 4 or x.shape[-1] % patch or x.shape[-2] % patch:
        raise ValueError(f"latents: expected [B, C, H, W] with H and W divisible by {patch}, got {tuple(x.shape)}")
    b, c, h, w = x.shape
    x = x.view(b, c, h // patch, patch, w // patch, patch).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // patch) * (w // patch), c * patch * patch)


def unpatchify(tokens: torch.Tensor, height: int, width: int, patch: int = 2) -> torch.Tensor:
    """Tokens [B, (H / p) * (W / p), C * p * p] -> [B, C, H, W]."""
    b, n, d = tokens.shape
    c = d // (patch * patch)
    if n != (height // patch) * (width // patch) or c * patch * patch != d:
        raise ValueError(f"tokens: shape {tuple(tokens.shape)} does not fit {height}x{width} with patch {patch}")
    x = tokens.view(b, height // patch, width // patch, c, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, height, width)


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """FLUX's 2x2 packing: [B, C, H, W] -> [B, H * W / 4, 4 * C]."""
    return patchify(latents, 2)


def unpack_latents(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`pack_latents` for an H x W latent."""
    return unpatchify(tokens, height, width, 2)


def image_ids(height: int, width: int, device: torch.device | str = "cpu", dtype=torch.float32, patch: int = 2) -> torch.Tensor:
    """Rotary position ids [(H / p) * (W / p), 3] of the tokens of an H x W input cut into p x p patches."""
    return FluxPipeline._prepare_latent_image_ids(1, height // patch, width // patch, device, dtype)


def text_ids(num_tokens: int, device: torch.device | str = "cpu", dtype=torch.float32) -> torch.Tensor:
    """Position ids [T, 3] of the text tokens (all zero, as in FLUX)."""
    return torch.zeros(num_tokens, 3, device=device, dtype=dtype)
