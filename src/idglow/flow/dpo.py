"""Flow-DPO losses (docs/design.md §4): preference learning on the flow-matching errors of a winner and a loser.

Winner ``w`` and loser ``l`` are noised with the same noise and sigma. With per-pair errors of the
policy and of the frozen reference,

    d(x) = mse(v_theta(x), v_target(x)) - mse(v_ref(x), v_target(x))
    z    = -beta * (d(w) - d(l))

``z > 0`` means the policy improved on the winner more than on the loser (its implicit reward margin).
Each loss variant is a small registered function of ``z`` and the pair's fine-grained ``weight`` and
``margin`` (from :mod:`idglow.pairs`); all return per-pair values [B].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

DPOLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
DPO_LOSSES: dict[str, DPOLoss] = {}


def register_dpo_loss(name: str) -> Callable[[DPOLoss], DPOLoss]:
    """Decorator: make ``fn(z, weight, margin) -> loss [B]`` available as ``dpo.loss: name``."""

    def add(fn: DPOLoss) -> DPOLoss:
        DPO_LOSSES[name] = fn
        return fn

    return add


@register_dpo_loss("sigmoid")
def sigmoid_loss(z: torch.Tensor, weight: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """Flow-DPO / Diffusion-DPO: ``-log sigmoid(z)``; ln 2 when the policy equals the reference."""
    return -F.logsigmoid(z)


@register_dpo_loss("weighted")
def weighted_loss(z: torch.Tensor, weight: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """``-weight * log sigmoid(z)``: pairs with a larger fine-grained score gap count more."""
    return -weight * F.logsigmoid(z)


@register_dpo_loss("margin")
def margin_loss(z: torch.Tensor, weight: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """``-log sigmoid(z - margin)``: a pair with a larger gap must be separated by a larger implicit reward."""
    return -F.logsigmoid(z - margin)


def dpo_terms(
    policy_winner: torch.Tensor,
    policy_loser: torch.Tensor,
    reference_winner: torch.Tensor,
    reference_loser: torch.Tensor,
    beta: float,
    kind: str = "sigmoid",
    weight: torch.Tensor | None = None,
    margin: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The DPO loss and what to log, per pair.

    Args:
        policy_winner, policy_loser: flow-matching errors [B] of the trained model (with gradient).
        reference_winner, reference_loser: the same errors [B] of the reference (no gradient needed).
        beta: inverse temperature of the implicit reward.
        kind: a name in :data:`DPO_LOSSES`.
        weight, margin: per-pair [B] (default: ones and zeros).

    Returns:
        ``loss`` [B]; detached ``reward_margin`` (= z), ``implicit_acc`` (z > 0), ``reward_winner`` and
        ``reward_loser`` (``-beta * d``), and the four errors ``mse_winner``, ``mse_loser``,
        ``ref_mse_winner``, ``ref_mse_loser``.
    """
    if kind not in DPO_LOSSES:
        raise ValueError(f"dpo.loss: unknown variant {kind!r}; choose one of {sorted(DPO_LOSSES)}")
    shapes = {tuple(t.shape) for t in (policy_winner, policy_loser, reference_winner, reference_loser)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"dpo_terms: expected four per-pair errors of one shape [B], got shapes {sorted(shapes)}")
    weight = torch.ones_like(policy_winner) if weight is None else weight.to(policy_winner)
    margin = torch.zeros_like(policy_winner) if margin is None else margin.to(policy_winner)
    reference_winner, reference_loser = reference_winner.detach(), reference_loser.detach()
    reward_winner = -beta * (policy_winner - reference_winner)
    reward_loser = -beta * (policy_loser - reference_loser)
    z = reward_winner - reward_loser
    return {
        "loss": DPO_LOSSES[kind](z, weight, margin),
        "reward_margin": z.detach(),
        "implicit_acc": (z > 0).float().detach(),
        "reward_winner": reward_winner.detach(),
        "reward_loser": reward_loser.detach(),
        "mse_winner": policy_winner.detach(),
        "mse_loser": policy_loser.detach(),
        "ref_mse_winner": reference_winner,
        "ref_mse_loser": reference_loser,
    }
