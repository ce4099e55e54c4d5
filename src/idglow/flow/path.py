"""The straight probability path between data (sigma = 0) and noise (sigma = 1)."""

from __future__ import annotations

import torch


def broadcast_sigma(sigma: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """Shape ``sigma`` ([B], scalar or float) so it broadcasts against ``like`` ([B, ...])."""
    sigma = torch.as_tensor(sigma, dtype=like.dtype, device=like.device)
    if sigma.ndim == 0:
        return sigma
    if sigma.ndim != 1 or sigma.shape[0] != like.shape[0]:
        raise ValueError(f"sigma: expected shape [{like.shape[0]}] or a scalar, got {tuple(sigma.shape)}")
    return sigma.view(-1, *([1] * (like.ndim - 1)))


def add_noise(latents: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``x_sigma = (1 - sigma) * latents + sigma * noise``.

    Args:
        latents: clean data [B, ...].
        noise: standard normal noise, same shape.
        sigma: noise level [B] (or scalar) in [0, 1].
    """
    if latents.shape != noise.shape:
        raise ValueError(f"noise: shape {tuple(noise.shape)} differs from latents {tuple(latents.shape)}")
    s = broadcast_sigma(sigma, latents)
    return (1 - s) * latents + s * noise


def velocity_target(latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The flow-matching regression target ``v = noise - latents`` (d x_sigma / d sigma)."""
    return noise - latents


def latents_from_velocity(x_sigma: torch.Tensor, sigma: torch.Tensor | float, velocity: torch.Tensor) -> torch.Tensor:
    """One-step data estimate ``latents_hat = x_sigma - sigma * velocity``."""
    return x_sigma - broadcast_sigma(sigma, x_sigma) * velocity
