"""FLUX's 2x2 latent packing and position ids, taken from diffusers' ``FluxPipeline``."""

from __future__ import annotations

import torch
from diffusers import FluxPipeline


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] (H, W even) -> packed tokens [B, H * W / 4, 4 * C]."""
    if latents.ndim != 4 or latents.shape[-1] % 2 or latents.shape[-2] % 2:
        raise ValueError(f"latents: expected [B, C, H, W] with even H and W, got {tuple(latents.shape)}")
    b, c, h, w = latents.shape
    return FluxPipeline._pack_latents(latents, b, c, h, w)


def unpack_latents(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Packed tokens [B, H * W / 4, 4 * C] -> [B, C, H, W] (H, W in latent pixels)."""
    return FluxPipeline._unpack_latents(tokens, height, width, vae_scale_factor=1)


def image_ids(height: int, width: int, device: torch.device | str = "cpu", dtype=torch.float32) -> torch.Tensor:
    """Rotary position ids [H * W / 4, 3] of the packed image tokens of an H x W latent."""
    return FluxPipeline._prepare_latent_image_ids(1, height // 2, width // 2, device, dtype)


def text_ids(num_tokens: int, device: torch.device | str = "cpu", dtype=torch.float32) -> torch.Tensor:
    """Position ids [T, 3] of the text tokens (all zero, as in FLUX)."""
    return torch.zeros(num_tokens, 3, device=device, dtype=dtype)
