"""Sigma grids and the Euler ODE sampler (sigma 1 -> 0)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from idglow.flow.timesteps import shift_sigmas

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sigma_grid(num_steps: int, shift: float = 1.0, mu: float | None = None) -> torch.Tensor:
    """Sampling sigmas [num_steps + 1], from 1 down to a final 0.

    The same grid as FLUX's pipeline: ``linspace(1, 1 / num_steps, num_steps)``, shifted (static
    ``shift`` or dynamic ``mu``), then a terminal 0. This equals
    ``FlowMatchEulerDiscreteScheduler.set_timesteps(sigmas=...)``'s ``.sigmas``.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps: must be >= 1, got {num_steps}")
    base = torch.linspace(1.0, 1.0 / num_steps, num_steps, dtype=torch.float64)
    sigmas = shift_sigmas(base, shift=shift, mu=mu)
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()


def start_at(sigmas: torch.Tensor, sigma_start: float) -> torch.Tensor:
    """The tail of a sampling grid [S + 1] that starts exactly at ``sigma_start`` in (0, 1]: ``sigma_start``
    followed by the grid's sigmas strictly below it (so 1 returns the grid unchanged).

    Starting from an image noised to ``sigma_start`` (``add_noise``) and integrating this tail is what
    diffusers calls image-to-image with ``strength``; here the start is a noise level, not a step fraction,
    so the same value means the same noise whatever the number of steps or the shift.
    """
    if not 0.0 < sigma_start <= 1.0:
        raise ValueError(f"sigma_start: must be in (0, 1], got {sigma_start}")
    below = sigmas[sigmas < sigma_start]
    return torch.cat([sigmas.new_tensor([sigma_start]), below])


@torch.no_grad()
def euler_sample(
    velocity_fn: VelocityFn,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    progress: bool = False,
    on_step: Callable[[int, float, torch.Tensor], torch.Tensor | None] | None = None,
) -> torch.Tensor:
    """Integrate ``dx/dsigma = v(x, sigma)`` with Euler steps along ``sigmas``.

    Args:
        velocity_fn: ``(x [B, ...], sigma [B]) -> velocity [B, ...]``.
        noise: the starting point at ``sigmas[0]`` [B, ...].
        sigmas: decreasing grid [S + 1] (see :func:`sigma_grid`).
        progress: show a progress bar.
        on_step: called after step i as ``on_step(i, sigma_next, x)``; a tensor it returns replaces ``x``
            (diffusers' ``callback_on_step_end``: preview, edit or stop-and-inspect the trajectory).

    Returns:
        the sample at ``sigmas[-1]`` [B, ...].
    """
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(f"sigmas: expected a 1-D grid of at least 2 values, got shape {tuple(sigmas.shape)}")
    if not bool((sigmas[1:] < sigmas[:-1]).all()):
        raise ValueError("sigmas: must be strictly decreasing (sampling runs from noise to data)")
    x = noise
    batch = noise.shape[0]
    for i in tqdm(range(sigmas.numel() - 1), desc="sampling", disable=not progress, leave=False):
        sigma, sigma_next = sigmas[i].item(), sigmas[i + 1].item()
        v = velocity_fn(x, torch.full((batch,), sigma, device=x.device, dtype=x.dtype))
        x = x + (sigma_next - sigma) * v
        if on_step is not None:
            replaced = on_step(i, sigma_next, x)
            x = x if replaced is None else replaced
    return x
