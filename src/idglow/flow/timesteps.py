"""Training-time sigma sampling, FLUX's resolution-dependent shift, and loss weightings.

The densities and weightings are diffusers' own (``diffusers.training_utils``), wrapped so that one
call returns continuous sigmas in [0, 1] in IdGlow's convention. Unlike diffusers' example trainers
we do not round sigmas onto a 1000-entry scheduler table: the shift is applied analytically.
"""

from __future__ import annotations

import math

import torch
from diffusers.pipelines.flux.pipeline_flux import calculate_shift
from diffusers.training_utils import compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3

TIMESTEP_SAMPLERS = ("uniform", "logit_normal", "mode")
LOSS_WEIGHTINGS = ("none", "sigma_sqrt", "cosmap")

# FLUX.1's scheduler constants: mu grows linearly with the image token count between these points.
FLUX_BASE_SEQ_LEN, FLUX_MAX_SEQ_LEN = 256, 4096
FLUX_BASE_SHIFT, FLUX_MAX_SHIFT = 0.5, 1.15


def flux_shift_mu(image_seq_len: int) -> float:
    """FLUX's resolution-dependent shift parameter ``mu`` for ``image_seq_len`` packed image tokens."""
    if image_seq_len <= 0:
        raise ValueError(f"image_seq_len: must be positive, got {image_seq_len}")
    return calculate_shift(image_seq_len, FLUX_BASE_SEQ_LEN, FLUX_MAX_SEQ_LEN, FLUX_BASE_SHIFT, FLUX_MAX_SHIFT)


def shift_sigmas(sigma: torch.Tensor, shift: float = 1.0, mu: float | None = None) -> torch.Tensor:
    """Move sigmas toward the noise end.

    With ``mu`` (FLUX dynamic shifting): ``exp(mu) / (exp(mu) + (1 / sigma - 1))``, which is the
    static shift with ``shift = exp(mu)``. Without: ``shift * sigma / (1 + (shift - 1) * sigma)``.
    Both fix sigma = 0 and sigma = 1.
    """
    if mu is not None:
        shift = math.exp(mu)
    if shift <= 0:
        raise ValueError(f"shift: must be positive, got {shift}")
    return shift * sigma / (1 + (shift - 1) * sigma)


def sample_sigmas(
    batch_size: int,
    sampler: str = "logit_normal",
    *,
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
    mode_scale: float = 1.29,
    shift: float = 1.0,
    mu: float | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw training sigmas [batch_size] in [0, 1].

    Args:
        sampler: ``uniform | logit_normal | mode`` (SD3 / FLUX densities, diffusers' implementation).
        logit_mean, logit_std: parameters of ``logit_normal``.
        mode_scale: parameter of ``mode``.
        shift: static shift (1 = none); ignored when ``mu`` is given.
        mu: FLUX dynamic shift, e.g. :func:`flux_shift_mu` of the image token count.
        generator: random generator, for reproducible draws.
    """
    if sampler not in TIMESTEP_SAMPLERS:
        raise ValueError(f"sampler: unknown timestep sampler {sampler!r}; choose one of {TIMESTEP_SAMPLERS}")
    if logit_std <= 0:
        raise ValueError(f"logit_std: must be positive, got {logit_std}")
    u = compute_density_for_timestep_sampling(
        weighting_scheme=sampler,
        batch_size=batch_size,
        logit_mean=logit_mean,
        logit_std=logit_std,
        mode_scale=mode_scale,
        device=device,
        generator=generator,
    )
    return shift_sigmas(u.clamp(0.0, 1.0), shift=shift, mu=mu)


def loss_weighting(sigma: torch.Tensor, weighting: str = "none") -> torch.Tensor:
    """Per-sample loss weight [B] for ``none | sigma_sqrt | cosmap`` (SD3's schemes, diffusers' code).

    ``sigma_sqrt`` is ``sigma ** -2`` and is unbounded as sigma -> 0; callers that use it should keep
    sigma away from 0.
    """
    if weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"weighting: unknown loss weighting {weighting!r}; choose one of {LOSS_WEIGHTINGS}")
    return compute_loss_weighting_for_sd3(weighting_scheme=weighting, sigmas=sigma)
