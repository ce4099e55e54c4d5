"""The Dynamics-Aware Gate: lambda(sigma, task) in [0, 1] for every sample."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers.models.embeddings import get_timestep_embedding
from torch import nn

from idglow.identity.config import GateConfig
from idglow.identity.schedules import schedule_function
from idglow.utils.defaults import TASKS


def task_indices(task: torch.Tensor | Sequence[str] | str, batch_size: int, device: torch.device) -> torch.Tensor:
    """Task names (``group``/``age``) or indices -> LongTensor [B]; a single name is broadcast."""
    if isinstance(task, str):
        task = [task] * batch_size
    if not isinstance(task, torch.Tensor):
        unknown = [t for t in task if t not in TASKS]
        if unknown:
            raise ValueError(f"task: unknown task {unknown[0]!r}; choose one of {TASKS}")
        task = torch.tensor([TASKS.index(t) for t in task], dtype=torch.long)
    task = task.to(device=device, dtype=torch.long)
    if task.shape != (batch_size,):
        raise ValueError(f"task: expected {batch_size} tasks, got shape {tuple(task.shape)}")
    if task.numel() and (task.min() < 0 or task.max() >= len(TASKS)):
        raise ValueError(f"task: indices must lie in [0, {len(TASKS) - 1}], got {task.tolist()}")
    return task


class DynamicsAwareGate(nn.Module):
    """lambda(sigma, task): the configured analytic schedule of each task, plus, for tasks whose
    schedule is ``learned``, a small MLP correction on the sigma embedding and a task embedding.

    The MLP's last layer starts at zero, so a learned gate reproduces its ``learned_init`` schedule
    exactly at initialisation. The sigma embedding is our own sinusoidal embedding of
    ``1000 * sigma`` (diffusers' ``get_timestep_embedding``), not FLUX's ``temb``, which also mixes
    in the pooled prompt and would make the schedule prompt-dependent.
    """

    def __init__(self, config: GateConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.specs = [getattr(config, t) for t in TASKS]
        self.schedules = [schedule_function(spec) for spec in self.specs]
        learned = torch.tensor([s.kind == "learned" for s in self.specs])
        self.register_buffer("learned_tasks", learned, persistent=False)
        self.mlp = None
        if bool(learned.any()):
            dim = config.embedding_dim
            hidden = max(s.learned_hidden for s in self.specs if s.kind == "learned")
            self.task_embedding = nn.Embedding(len(TASKS), dim)
            self.mlp = nn.Sequential(nn.Linear(2 * dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, sigma: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """sigma [B] in [0, 1], task [B] (indices into ``TASKS``) -> lambda [B] in [0, 1]."""
        if sigma.ndim != 1 or task.shape != sigma.shape:
            raise ValueError(f"sigma: expected shape [B] matching task {tuple(task.shape)}, got {tuple(sigma.shape)}")
        sigma = sigma.float()
        per_task = torch.stack([schedule(sigma) for schedule in self.schedules], dim=1)
        lam = per_task.gather(1, task.view(-1, 1)).squeeze(1)
        if self.mlp is None:
            return lam
        emb = get_timestep_embedding(sigma * 1000, self.config.embedding_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        correction = self.mlp(torch.cat([emb, self.task_embedding(task)], dim=1)).squeeze(1)
        lam = lam + correction * self.learned_tasks[task].to(lam.dtype)
        return lam.clamp(0.0, 1.0)
