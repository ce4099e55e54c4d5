"""The identity branch: encoder -> aggregator -> C_ID, the gate, and one cross-attention per chosen block."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from idglow.identity.aggregator import VariableConditionAggregator
from idglow.identity.attention import IdentityCondition, MultiIDCrossAttention
from idglow.identity.config import IdentityConfig
from idglow.identity.encoder import build_identity_encoder
from idglow.identity.gate import DynamicsAwareGate


def pad_references(references: Sequence[torch.Tensor], max_refs: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-sample reference sets of different sizes into one padded batch.

    Args:
        references: B tensors [N_b, ...] (N_b may be 0), same trailing shape.
        max_refs: the branch's N_max, when given: more references in one sample is an error.

    Returns:
        ``(refs [B, max N_b, ...], ref_mask [B, max N_b] bool)``; padding is zeros and False.
    """
    if not references:
        raise ValueError("references: empty batch")
    trailing = references[0].shape[1:]
    for i, r in enumerate(references):
        if r.shape[1:] != trailing:
            raise ValueError(f"references[{i}]: trailing shape {tuple(r.shape[1:])} differs from {tuple(trailing)}")
    n_max = max(r.shape[0] for r in references)
    if max_refs is not None and n_max > max_refs:
        raise ValueError(f"refs: a sample has {n_max} references; the model takes at most {max_refs}")
    refs = references[0].new_zeros((len(references), n_max, *trailing))
    mask = torch.zeros(len(references), n_max, dtype=torch.bool, device=refs.device)
    for i, r in enumerate(references):
        refs[i, : r.shape[0]] = r
        mask[i, : r.shape[0]] = True
    return refs, mask


class IdentityBranch(nn.Module):
    """Everything IdGlow adds to the backbone; saved and loaded on its own.

    Args:
        config: identity-branch configuration.
        dim: hidden width of the backbone's dual-stream blocks (queries come from there).
        heads, head_dim: the backbone's attention heads; the cross-attention uses ``config.attention_heads``
            (default half of ``heads``) of size ``head_dim``.
        text_dim: width of the prompt token states (for ``config.text_tokens``).
        num_blocks: number of dual-stream blocks of the backbone.
    """

    def __init__(self, config: IdentityConfig, dim: int, heads: int, head_dim: int, text_dim: int, num_blocks: int):
        super().__init__()
        config.validate()
        self.config = config
        blocks = list(range(num_blocks)) if config.blocks is None else list(config.blocks)
        bad = [b for b in blocks if not 0 <= b < num_blocks]
        if bad:
            raise ValueError(f"identity.blocks: block index {bad[0]} out of range; the backbone has {num_blocks}")
        self.encoder = build_identity_encoder(
            config.encoder, config.num_tokens, config.token_dim, config.encoder_width, config.embedding_dim,
            config.map_dim,
        )
        self.aggregator = VariableConditionAggregator(
            config.max_refs, config.token_dim, text_dim if config.text_tokens else None
        )
        self.gate = DynamicsAwareGate(config.gate)
        id_heads = config.attention_heads or max(1, heads // 2)
        self.cross_attention = nn.ModuleDict(
            {str(b): MultiIDCrossAttention(dim, config.token_dim, id_heads, head_dim, config.rotate_queries) for b in blocks}
        )

    @classmethod
    def for_backbone(cls, config: IdentityConfig, flux_config) -> IdentityBranch:
        """A branch sized for a diffusers FLUX backbone with config ``flux_config``."""
        return cls(
            config,
            dim=flux_config.num_attention_heads * flux_config.attention_head_dim,
            heads=flux_config.num_attention_heads,
            head_dim=flux_config.attention_head_dim,
            text_dim=flux_config.joint_attention_dim,
            num_blocks=flux_config.num_layers,
        )

    def encode(
        self,
        refs: torch.Tensor,
        ref_mask: torch.Tensor | None = None,
        text_tokens: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> IdentityCondition:
        """References -> the sigma-independent identity condition.

        Args:
            refs: [B, N, 3, H, W] face crops in [-1, 1] (``conv``), [B, N, E] embeddings (``embedding``) or
                [B, N, E + 16*C] embeddings and 4x4 feature maps (``embedding_map``); N may be 0.
            ref_mask: [B, N] bool, True for real references (default: all real).
            text_tokens, text_mask: prompt token states [B, T, text_dim] and mask, when C_ID carries text.
        """
        self.encoder.check_references(refs)
        b, n = refs.shape[:2]
        if n > self.config.max_refs:
            raise ValueError(f"refs: N={n} references exceed max_refs={self.config.max_refs}")
        if ref_mask is None:
            ref_mask = torch.ones(b, n, dtype=torch.bool, device=refs.device)
        if ref_mask.shape != (b, n) or ref_mask.dtype != torch.bool:
            raise ValueError(f"ref_mask: expected a bool tensor of shape [{b}, {n}], got {ref_mask.dtype} {tuple(ref_mask.shape)}")
        tokens = refs.new_zeros(b, n, self.config.num_tokens, self.config.token_dim)
        if bool(ref_mask.any()):
            # Encode only the real references: padding costs nothing and cannot leak into results.
            tokens = tokens.index_put((ref_mask,), self.encoder(refs[ref_mask]).to(tokens.dtype))
        c_id, key_mask = self.aggregator(tokens, ref_mask, text_tokens, text_mask)
        return IdentityCondition(c_id=c_id, key_mask=key_mask, active=ref_mask.any(dim=1))

    @torch.no_grad()
    def cache_kv(self, condition: IdentityCondition) -> IdentityCondition:
        """The same condition with every block's K/V precomputed, for reuse across sampling steps."""
        kv = {block: module.project_kv(condition.c_id) for block, module in self.cross_attention.items()}
        return IdentityCondition(condition.c_id, condition.key_mask, condition.active, kv)
