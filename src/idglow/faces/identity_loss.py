"""The stage-1 identity loss (docs/design.md §4): pure tensor maths, no config objects, no I/O.

``L_id = w_id * s_task(sigma) * a(step) * mean_i (1 - cos(phi(crop_i(x0_hat)), phi(ref_i)))`` where
``x0_hat`` is the one-step estimate of the clean image, ``crop_i`` the ground-truth face box of
subject i, ``phi`` a frozen, differentiable face embedder and ``ref_i`` subject i's reference.

Optionally the cosine is averaged over several jittered crops of each face and both sides are low-passed first
(``views``, ``shift``, ``scale``, ``blur``): a small CNN embedder can be moved by pixel-level texture (speckle), and
texture tuned to one exact crop, or finer than the blur, stops paying.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

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
    views: int = 1,
    shift: float = 0.0,
    scale: float = 0.0,
    blur: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Cosine similarity of each subject's face in ``images`` to its reference (differentiable in ``images``).

    Args:
        images: estimated clean images [B, 3, H, W] in [-1, 1].
        boxes: ground-truth face boxes [M, 4] in pixels of ``images``.
        rows: which image each subject belongs to [M].
        reference_emb: unit reference embeddings [M, E], aligned with ``boxes``; or [R, M, E] to compare each face
            with R references at once (the face crops are embedded once). With ``blur`` > 0 they should be
            embeddings of references blurred alike.
        embedder: face crops [M, 3, h, w] -> unit embeddings [M, E].
        views: crops per face whose similarities are averaged (see :func:`jitter_boxes`).
        shift, scale: the crops' random jitter (0 and 0: every view is the exact box crop).
        blur: Gaussian sigma in crop pixels applied to the crops before ``embedder`` (0 = none).
        generator: the jitter's random source (so a run's noise and data order do not depend on it).

    Returns:
        similarity [M] (or [R, M]) in [-1, 1].
    """
    if not (boxes.shape[0] == rows.shape[0] == reference_emb.shape[-2]):
        raise ValueError(f"boxes, rows, reference_emb: subject counts differ ({boxes.shape[0]}, {rows.shape[0]}, "
                         f"{reference_emb.shape[-2]})")
    if views < 1:
        raise ValueError(f"views: must be >= 1, got {views}")
    if shift or scale:
        boxes_of_views = jitter_boxes(boxes, views, shift, scale, generator)
    else:
        views, boxes_of_views = 1, boxes  # identical crops: one is their mean
    blurred = lambda crops: embedder(gaussian_blur(crops, blur))  # noqa: E731
    faces = face_embeddings(images, boxes_of_views, rows.repeat(views), blurred)
    faces = faces.view(views, boxes.shape[0], -1)
    return (faces * reference_emb.to(faces.dtype).unsqueeze(-3)).sum(dim=-1).mean(dim=-2)


def jitter_boxes(
    boxes: torch.Tensor, views: int, shift: float, scale: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``views`` randomly jittered copies of ``boxes`` [M, 4] -> [views * M, 4] (view-major).

    Each copy's centre moves by up to ``shift`` times the box's longer side along each axis, and its size is scaled
    by a factor in ``[1 - scale, 1 + scale]`` (uniform draws, as a detector's boxes jitter).
    """
    u = torch.rand(views, boxes.shape[0], 3, generator=generator).mul(2).sub(1).to(boxes)
    x0, y0, x1, y1 = boxes.unbind(-1)
    longer = torch.maximum(x1 - x0, y1 - y0)
    cx = (x0 + x1) / 2 + u[..., 0] * shift * longer
    cy = (y0 + y1) / 2 + u[..., 1] * shift * longer
    half_w, half_h = (x1 - x0) / 2 * (1 + scale * u[..., 2]), (y1 - y0) / 2 * (1 + scale * u[..., 2])
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1).reshape(-1, 4)


def gaussian_blur(crops: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian low-pass of crops [M, C, h, w] (``sigma`` in pixels, 0 = unchanged; borders reflected)."""
    if sigma <= 0:
        return crops
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=crops.dtype, device=crops.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = crops.shape[1]
    padded = F.pad(crops, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


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
