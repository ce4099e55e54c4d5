"""The Variable-Condition Aggregator: per-reference token groups -> one multi-ID sequence C_ID."""

from __future__ import annotations

import torch
from torch import nn


class VariableConditionAggregator(nn.Module):
    """Concatenate N token groups (plus optional text tokens) into C_ID with a key padding mask.

    A learned slot embedding per reference index tells the groups apart (reference k is the k-th
    person from the left when the data says so). Padded references and, for a sample with no
    reference at all, its text tokens too, are masked out: such a sample receives no identity
    injection.
    """

    def __init__(self, max_refs: int, token_dim: int, text_dim: int | None = None):
        super().__init__()
        self.max_refs = max_refs
        self.slot_embedding = nn.Embedding(max_refs, token_dim)
        nn.init.normal_(self.slot_embedding.weight, std=0.02)
        self.text_proj = nn.Linear(text_dim, token_dim) if text_dim else None

    def forward(
        self,
        tokens: torch.Tensor,
        ref_mask: torch.Tensor,
        text_tokens: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Build C_ID.

        Args:
            tokens: per-reference tokens [B, N, K, D] (padding entries may hold anything).
            ref_mask: [B, N] bool, True for a real reference.
            text_tokens: prompt token states [B, T, text_dim], used when built with ``text_dim``.
            text_mask: [B, T] bool, True for real text tokens (default: all).

        Returns:
            ``(c_id [B, N*K (+T), D], key_mask [B, N*K (+T)] bool)``.
        """
        b, n, k, d = tokens.shape
        if n > self.max_refs:
            raise ValueError(f"refs: N={n} references exceed max_refs={self.max_refs}")
        if ref_mask.shape != (b, n):
            raise ValueError(f"ref_mask: expected shape [{b}, {n}], got {tuple(ref_mask.shape)}")
        slots = self.slot_embedding.weight[:n].view(1, n, 1, d)
        c_id = (tokens + slots).reshape(b, n * k, d)
        key_mask = ref_mask.repeat_interleave(k, dim=1)
        if self.text_proj is None:
            return c_id, key_mask
        if text_tokens is None:
            raise ValueError("text_tokens: the aggregator appends text tokens (identity.text_tokens) but none were given")
        if text_mask is None:
            text_mask = torch.ones(text_tokens.shape[:2], dtype=torch.bool, device=text_tokens.device)
        text_mask = text_mask & ref_mask.any(dim=1, keepdim=True)
        c_id = torch.cat([c_id, self.text_proj(text_tokens)], dim=1)
        return c_id, torch.cat([key_mask, text_mask], dim=1)
