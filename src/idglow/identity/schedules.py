"""Identity-strength schedules lambda(sigma): pure functions of the noise level.

They drive the Dynamics-Aware Gate (how strongly identity is injected at each step) and, in stage 1,
the identity-loss weighting. All map sigma in [0, 1] (1 = noise) to lambda in [0, 1]:

- ``constant``: ``lambda_max`` everywhere.
- ``linear_decay``: ``lambda_min + (lambda_max - lambda_min) * sigma``: strong at the start of
  sampling (sigma = 1), relaxed toward the end. ``increasing=True`` reverses it (weak early, strong late).
- ``window``: ``lambda_max`` inside ``[sigma_lo, sigma_hi]``, ``lambda_min`` outside, joined by
  smoothstep ramps of width ``edge_width`` *outside* the window (0 gives hard edges). The paper's
  "critical semantic window" for the age task.

The ``learned`` schedule of the gate is an MLP correction on top of one of these (see
:mod:`idglow.identity.gate`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Literal

import torch

from idglow.utils.config import option

ANALYTIC_SCHEDULES = ("constant", "linear_decay", "window")
SCHEDULES = (*ANALYTIC_SCHEDULES, "learned")


def constant(sigma: torch.Tensor, lambda_max: float = 1.0) -> torch.Tensor:
    """``lambda_max`` for every sigma; shape of ``sigma``."""
    return torch.full_like(sigma, lambda_max)


def linear_decay(
    sigma: torch.Tensor, lambda_min: float = 0.0, lambda_max: float = 1.0, increasing: bool = False
) -> torch.Tensor:
    """Linear in sigma: ``lambda_max`` at sigma = 1 and ``lambda_min`` at sigma = 0 (reversed if ``increasing``)."""
    s = 1.0 - sigma if increasing else sigma
    return lambda_min + (lambda_max - lambda_min) * s


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def window(
    sigma: torch.Tensor,
    sigma_lo: float,
    sigma_hi: float,
    lambda_min: float = 0.0,
    lambda_max: float = 1.0,
    edge_width: float = 0.0,
) -> torch.Tensor:
    """``lambda_max`` on ``[sigma_lo, sigma_hi]``, ``lambda_min`` at distance >= ``edge_width`` outside it."""
    if edge_width > 0:
        rise = _smoothstep((sigma - (sigma_lo - edge_width)) / edge_width)
        fall = _smoothstep(((sigma_hi + edge_width) - sigma) / edge_width)
        inside = rise * fall
    else:
        inside = ((sigma >= sigma_lo) & (sigma <= sigma_hi)).to(sigma.dtype)
    return lambda_min + (lambda_max - lambda_min) * inside


@dataclasses.dataclass
class ScheduleConfig:
    """One lambda(sigma) schedule (see the module docstring for the formulas)."""

    kind: Literal["constant", "linear_decay", "window", "learned"] = option(
        "linear_decay", "schedule: constant | linear_decay | window | learned (an MLP correction on `learned_init`)"
    )
    lambda_min: float = option(0.0, "lowest strength, in [0, 1]")
    lambda_max: float = option(1.0, "highest strength, in [0, 1]")
    increasing: bool = option(False, "linear_decay only: rise toward sigma = 0 instead of decaying")
    sigma_lo: float = option(0.3, "window only: lower sigma bound of the full-strength window")
    sigma_hi: float = option(0.7, "window only: upper sigma bound of the full-strength window")
    edge_width: float = option(0.1, "window only: width in sigma of the smooth ramps outside the window (0 = hard)")
    learned_init: Literal["constant", "linear_decay", "window"] = option(
        "linear_decay", "learned only: the analytic schedule the MLP starts from (uses the fields above)"
    )
    learned_hidden: int = option(64, "learned only: hidden width of the gate MLP")

    def validate(self) -> None:
        """Raise ValueError naming the field when the parameters are out of range or inconsistent."""
        for name in ("lambda_min", "lambda_max"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must lie in [0, 1], got {value}")
        if self.lambda_min > self.lambda_max:
            raise ValueError(f"lambda_min: {self.lambda_min} exceeds lambda_max {self.lambda_max}")
        if not 0.0 <= self.sigma_lo < self.sigma_hi <= 1.0:
            raise ValueError(
                f"sigma_lo: need 0 <= sigma_lo < sigma_hi <= 1, got sigma_lo={self.sigma_lo}, sigma_hi={self.sigma_hi}"
            )
        if self.edge_width < 0:
            raise ValueError(f"edge_width: must be >= 0, got {self.edge_width}")
        if self.learned_hidden < 1:
            raise ValueError(f"learned_hidden: must be >= 1, got {self.learned_hidden}")

    @property
    def analytic_kind(self) -> str:
        """The analytic family evaluated by :func:`evaluate` (``learned_init`` for a learned schedule)."""
        return self.learned_init if self.kind == "learned" else self.kind


def schedule_function(spec: ScheduleConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """The analytic schedule of ``spec`` as a function of sigma, parameters validated once.

    For a ``learned`` schedule this is its initial (``learned_init``) form.
    """
    spec.validate()
    kind = spec.analytic_kind
    if kind == "constant":
        return partial(constant, lambda_max=spec.lambda_max)
    if kind == "linear_decay":
        return partial(linear_decay, lambda_min=spec.lambda_min, lambda_max=spec.lambda_max, increasing=spec.increasing)
    if kind == "window":
        return partial(
            window, sigma_lo=spec.sigma_lo, sigma_hi=spec.sigma_hi, lambda_min=spec.lambda_min,
            lambda_max=spec.lambda_max, edge_width=spec.edge_width,
        )
    raise ValueError(f"kind: unknown schedule {kind!r}; choose one of {SCHEDULES}")


def evaluate(spec: ScheduleConfig, sigma: torch.Tensor) -> torch.Tensor:
    """The analytic schedule of ``spec`` at ``sigma`` (any shape); for ``learned``, its initial value.

    Raises:
        ValueError: sigma outside [0, 1], or inconsistent parameters (named).
    """
    if sigma.numel() and (sigma.min() < 0 or sigma.max() > 1):
        raise ValueError(f"sigma: must lie in [0, 1], got range [{sigma.min().item():.4g}, {sigma.max().item():.4g}]")
    return schedule_function(spec)(sigma)
