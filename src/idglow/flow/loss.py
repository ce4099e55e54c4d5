"""Per-sample flow-matching loss."""

from __future__ import annotations

import torch

from idglow.flow.timesteps import loss_weighting


def flow_matching_loss(
    velocity_pred: torch.Tensor,
    velocity: torch.Tensor,
    sigma: torch.Tensor,
    weighting: str = "none",
) -> torch.Tensor:
    """Weighted mean squared velocity error, one value per sample.

    Args:
        velocity_pred: model output [B, ...].
        velocity: target ``noise - latents`` [B, ...].
        sigma: noise levels [B] the inputs were drawn at.
        weighting: ``none | sigma_sqrt | cosmap``.

    Returns:
        loss [B] (float32): ``w(sigma) * mean((velocity_pred - velocity) ** 2)`` over non-batch dims.
    """
    if velocity_pred.shape != velocity.shape:
        raise ValueError(
            f"velocity_pred: shape {tuple(velocity_pred.shape)} differs from target {tuple(velocity.shape)}"
        )
    if sigma.shape != (velocity.shape[0],):
        raise ValueError(f"sigma: expected shape [{velocity.shape[0]}], got {tuple(sigma.shape)}")
    mse = (velocity_pred.float() - velocity.float()).pow(2).flatten(1).mean(dim=1)
    return loss_weighting(sigma.float(), weighting) * mse
