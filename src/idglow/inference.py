"""Sampling an IdGlow transformer with the Euler sampler, identity K/V cached across steps."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from idglow.flow import euler_sample, sigma_grid
from idglow.models.id_attention import IdentityCondition
from idglow.models.transformer import IdGlowTransformer


@torch.no_grad()
def sample_packed(
    model: IdGlowTransformer,
    noise: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    pooled_projections: torch.Tensor,
    img_ids: torch.Tensor,
    txt_ids: torch.Tensor,
    identity: IdentityCondition | None = None,
    task: Sequence[str] | str | torch.Tensor = "group",
    num_steps: int = 20,
    shift: float = 1.0,
    mu: float | None = None,
    cache_kv: bool = True,
    guidance: torch.Tensor | None = None,
    id_guidance: float = 1.0,
    progress: bool = False,
) -> torch.Tensor:
    """Integrate the model's velocity from ``noise`` (sigma = 1) to data (sigma = 0).

    Args:
        noise: packed noise tokens [B, S, C].
        encoder_hidden_states, pooled_projections, img_ids, txt_ids: as for :meth:`IdGlowTransformer.forward`.
        identity: encoded references, or None for text-only sampling.
        task: per-sample task(s).
        num_steps, shift, mu: the sigma grid (:func:`idglow.flow.sigma_grid`).
        cache_kv: compute each block's identity K/V once for the whole run (C_ID does not depend on sigma).
        id_guidance: identity guidance scale g: ``v = v_none + g * (v_id - v_none)``, where ``v_none``
            is the same model without references (the base model, exactly). 1 = one forward per step;
            any other value costs a second forward.

    Returns:
        packed latents [B, S, C].
    """
    if identity is not None and cache_kv and identity.kv is None:
        identity = model.cache_identity(identity)

    def forward(x: torch.Tensor, sigma: torch.Tensor, condition: IdentityCondition | None) -> torch.Tensor:
        return model(
            x, sigma, encoder_hidden_states, pooled_projections, img_ids, txt_ids,
            identity=condition, task=task, guidance=guidance,
        )

    def velocity(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        v_id = forward(x, sigma, identity)
        if identity is None or id_guidance == 1.0:
            return v_id
        v_none = forward(x, sigma, None)
        return v_none + id_guidance * (v_id - v_none)

    return euler_sample(velocity, noise, sigma_grid(num_steps, shift=shift, mu=mu).to(noise.device), progress=progress)
