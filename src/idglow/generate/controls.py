"""Per-call identity controls: a strength scale on the gate and a replacement gate schedule, undone after the call.

Users of identity adapters ask that a setting made for one call never leaks into the next; here every override
lives inside a ``with`` block that restores the model's own gate, whatever happens inside.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from idglow.identity.config import GateConfig
from idglow.identity.gate import DynamicsAwareGate
from idglow.utils.config import from_dict, parse_overrides

ScheduleOverride = GateConfig | Mapping | Sequence[str] | None


def gate_config_with(current: GateConfig, schedule: ScheduleOverride) -> GateConfig:
    """``current`` with ``schedule`` applied: a whole :class:`GateConfig`, a nested mapping
    (``{"group": {"kind": "constant"}}``) or ``KEY=VALUE`` strings (``["group.lambda_min=0.2"]``).

    Raises:
        ValueError: a malformed item, an unknown key or an out-of-range value (named), or a learned schedule on
            either side (a learned gate has trained weights and cannot be swapped at sampling time).
    """
    if schedule is None:
        return current
    if isinstance(schedule, GateConfig):
        updated = schedule
    elif isinstance(schedule, Mapping):
        updated = from_dict(GateConfig, schedule, base=current)
    else:
        pairs = []
        for item in schedule:
            key, sep, value = str(item).partition("=")
            if not sep or not key:
                raise ValueError(f"schedule: expected KEY=VALUE (e.g. group.kind=constant), got {item!r}")
            pairs += [f"--{key}", value]
        updated = from_dict(GateConfig, parse_overrides(pairs), base=current)
    updated.validate()
    if "learned" in (current.group.kind, current.age.kind, updated.group.kind, updated.age.kind):
        raise ValueError("schedule: a learned gate has trained weights and cannot be overridden at sampling time")
    return updated


class ScaledGate(nn.Module):
    """``scale * gate(sigma, task)``: the identity strength of one call (0 switches identity off exactly)."""

    def __init__(self, gate: nn.Module, scale: float):
        super().__init__()
        self.gate, self.scale = gate, float(scale)

    def forward(self, sigma: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """sigma [B], task [B] -> lambda [B] (may exceed 1 when ``scale`` > 1: extrapolation)."""
        return self.scale * self.gate(sigma, task)


@contextlib.contextmanager
def identity_controls(model, scale: float = 1.0, schedule: ScheduleOverride = None):
    """Within the block, ``model`` (an :class:`IdGlowTransformer`) injects identity with ``schedule`` (see
    :func:`gate_config_with`) times ``scale``; its own gate and gate config come back on exit."""
    if not scale >= 0.0:
        raise ValueError(f"id_scale: must be >= 0 (0 = identity off, 1 = as trained), got {scale}")
    gate, config = model.identity.gate, model.config.identity.gate
    updated = gate_config_with(config, schedule)
    new_gate = gate if updated is config else DynamicsAwareGate(updated).to(next(model.parameters()).device)
    try:
        model.config.identity.gate = updated
        model.identity.gate = new_gate if scale == 1.0 else ScaledGate(new_gate, scale)
        yield model
    finally:
        model.identity.gate, model.config.identity.gate = gate, config
