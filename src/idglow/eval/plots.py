"""Figures users tune by eye: lambda(sigma) for every task of a gate configuration."""

from __future__ import annotations

from pathlib import Path

import torch

from idglow.identity.config import GateConfig
from idglow.identity.gate import DynamicsAwareGate
from idglow.utils.defaults import TASKS


def gate_curves(gate: DynamicsAwareGate, num: int = 201) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(sigma [num], {task: lambda [num]})`` on a uniform sigma grid from 1 to 0."""
    sigma = torch.linspace(1.0, 0.0, num)
    with torch.no_grad():
        curves = {t: gate(sigma, torch.full((num,), i, dtype=torch.long)) for i, t in enumerate(TASKS)}
    return sigma, curves


def describe_schedule(config: GateConfig, task: str) -> str:
    """A one-line description of ``task``'s schedule, for legends and tables."""
    s = getattr(config, task)
    if s.analytic_kind == "window":
        shape = f"window [{s.sigma_lo:g}, {s.sigma_hi:g}] edge {s.edge_width:g}"
    elif s.analytic_kind == "linear_decay":
        shape = "linear " + ("rise" if s.increasing else "decay")
    else:
        shape = "constant"
    learned = "learned on " if s.kind == "learned" else ""
    return f"{task}: {learned}{shape}, lambda in [{s.lambda_min:g}, {s.lambda_max:g}], applied to {config.apply_to}"


def gate_figure(gate: DynamicsAwareGate, title: str = "Dynamics-Aware Gate", scale: float = 1.0):
    """A matplotlib figure of ``scale`` * lambda(sigma) for each task; the x axis runs in sampling order (sigma 1 -> 0).
    The caller closes it (``plt.close(fig)``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sigma, curves = gate_curves(gate)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    for task, lam in curves.items():
        ax.plot(sigma.numpy(), scale * lam.numpy(), lw=2, label=describe_schedule(gate.config, task))
    ax.set_xlim(1.0, 0.0)  # sampling runs from noise (sigma = 1) to data (sigma = 0)
    ax.set_ylim(-0.03, max(1.05, 1.05 * scale))
    ax.set_xlabel("sigma  (1 = noise; sampling runs left to right)")
    ax.set_ylabel("identity strength lambda" + (f" x {scale:g}" if scale != 1.0 else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def plot_gate(gate: DynamicsAwareGate, path: str | Path, title: str = "Dynamics-Aware Gate") -> Path:
    """Draw lambda(sigma) of each task into ``path`` (PNG); see :func:`gate_figure`."""
    import matplotlib.pyplot as plt

    fig = gate_figure(gate, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
