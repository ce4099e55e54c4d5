"""Turning subjects' reference crops into the identity branch's input, the same way in training and evaluation."""

from __future__ import annotations

import torch


@torch.no_grad()
def frozen_embeddings(embedder: torch.nn.Module, crops: torch.Tensor, batch: int = 1024,
                      sources: list[str] | None = None) -> torch.Tensor:
    """Embeddings [M, E] of face crops [M, 3, h, w] in [-1, 1] by a frozen embedder (eval mode): unit vectors, or for
    a :class:`idglow.faces.recognizer.FeatureMapEmbedder` the unit embedding followed by its feature map.

    ``sources`` (one ``file:line: field`` per crop) reach embedders that can fail on a crop (a face backend that
    finds no face), so their errors name the reference.
    """
    embedder.eval()
    if len(crops) == 0:
        return crops.new_zeros(0, embedder.head.out_features)
    named = sources is not None and getattr(embedder, "names_sources", False)
    param = next(embedder.parameters(), None)  # a face backend (dlib, insightface) has none: it reads CPU crops
    device = crops.device if param is None else param.device
    return torch.cat([embedder(crops[i : i + batch].to(device), sources[i : i + batch]) if named
                      else embedder(crops[i : i + batch].to(device)) for i in range(0, len(crops), batch)])


def scatter_references(
    values: torch.Tensor, rows: torch.Tensor, slots: torch.Tensor, batch_size: int, max_refs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-subject inputs into the padded ``[B, N, ...]`` layout of :meth:`IdentityBranch.encode`.

    Args:
        values: one input per subject [M, ...] (a frozen embedding [M, E] or a crop [M, 3, h, w]).
        rows, slots: the sample [M] and reference position [M] of each subject.
        batch_size: B; max_refs: the branch's N_max.

    Returns:
        ``(refs [B, N, ...], ref_mask [B, N] bool)`` with N = the largest slot + 1 (padding: zeros, False).
    """
    if len(slots) and int(slots.max()) >= max_refs:
        raise ValueError(f"refs: a sample has {int(slots.max()) + 1} references; the model takes at most {max_refs}")
    n = int(slots.max()) + 1 if len(slots) else 0
    refs = values.new_zeros(batch_size, n, *values.shape[1:])
    mask = torch.zeros(batch_size, n, dtype=torch.bool, device=values.device)
    rows, slots = rows.to(values.device), slots.to(values.device)
    refs[rows, slots] = values
    mask[rows, slots] = True
    return refs, mask
