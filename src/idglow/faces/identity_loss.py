"""The stage-1 identity loss (docs/design.md §4): pure tensor maths, no config objects, no I/O.

``L_id = w_id * s_task(sigma) * a(step) * mean_i (1 - cos(phi(crop_i(x0_hat)), phi(ref_i)))`` where
``x0_hat`` is the one-step estimate of the clean image, ``crop_i`` the ground-truth face box of
subject i, ``phi`` a frozen, differentiable face embedder and ``ref_i`` subject i's reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from idglow.cast.crops import face_crops

ANNEALING = ("none", "warmup", "decay")


def face_embeddings(
    images: torch.Tensor, boxes: torch.Tensor, rows: torch.Tensor, embedder: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Unit embeddings [M, E] of the faces at ``boxes`` [M, 4] (pixels) in ``images`` [B, 3, H, W] (row ``rows`` [M]);
    differentiable in ``images``."""
    return embedder(face_crops(images.float(), boxes, rows))


def subject_similarity(
    images: torch.Tensor,
    boxes: torch.Tensor,
    rows: torch.Tensor,
    reference_emb: torch.Tensor,
    embedder: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Cosine similarity of each subject's face in ``images`` to its reference (differentiable in ``images``).

    Args:
        images: estimated clean images [B, 3, H, W] in [-1, 1].
        boxes: ground-truth face boxes [M, 4] in pixels of ``images``.
        rows: which image each subject belongs to [M].
        reference_emb: unit reference embeddings [M, E], aligned with ``boxes``; or [R, M, E] to compare each face
            with R references at once (the face crops are embedded once).
        embedder: face crops [M, 3, h, w] -> unit embeddings [M, E].

    Returns:
        similarity [M] (or [R, M]) in [-1, 1].
    """
    if not (boxes.shape[0] == rows.shape[0] == reference_emb.shape[-2]):
        raise ValueError(f"boxes, rows, reference_emb: subject counts differ ({boxes.shape[0]}, {rows.shape[0]}, "
                         f"{reference_emb.shape[-2]})")
    faces = face_embeddings(images, boxes, rows, embedder)
    return (faces * reference_emb.to(faces.dtype)).sum(dim=-1)


def per_sample_mean(values: torch.Tensor, rows: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Mean of per-subject ``values`` [M] within each sample -> [batch_size] (0 for a sample without subjects)."""
    total = values.new_zeros(batch_size).index_add(0, rows, values)
    count = values.new_zeros(batch_size).index_add(0, rows, torch.ones_like(values))
    return total / count.clamp_min(1)


def annealing(step: int, kind: str, steps: int) -> float:
    """``a(step)``: ``none`` = 1; ``warmup`` rises linearly 0 -> 1 over ``steps``; ``decay`` falls 1 -> 0."""
    if kind not in ANNEALING:
        raise ValueError(f"anneal: unknown annealing {kind!r}; choose one of {ANNEALING}")
    if kind == "none" or steps <= 0:
        return 1.0
    progress = min(max(step / steps, 0.0), 1.0)
    return progress if kind == "warmup" else 1.0 - progress


def identity_loss_weight(
    sigma: torch.Tensor,
    task: torch.Tensor,
    schedules: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    weight: float,
    anneal: float = 1.0,
) -> torch.Tensor:
    """``w_id * s_task(sigma) * a(step)`` per sample.

    Args:
        sigma: noise levels [B]; task: task indices [B] into ``schedules``.
        schedules: one ``s(sigma)`` per task.
        weight: ``w_id``; anneal: ``a(step)``.

    Returns:
        weights [B].
    """
    per_task = torch.stack([schedule(sigma.float()) for schedule in schedules], dim=1)
    return weight * anneal * per_task.gather(1, task.view(-1, 1)).squeeze(1)
