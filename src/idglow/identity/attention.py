"""Multi-ID cross-attention and the diffusers attention processor that injects it into FLUX blocks.

diffusers' ``FluxTransformerBlock`` adds a third output of its attention processor to the image
stream after the feed-forward (the IP-Adapter extension point). :class:`IdGlowAttnProcessor` is the
stock ``FluxAttnProcessor`` (inherited, unchanged) plus that third output:
``lambda * CrossAttn(Q = image stream, K/V = C_ID)``. Per-call inputs arrive through
``joint_attention_kwargs={"idglow": IdentityInjection}``.
"""

from __future__ import annotations

import dataclasses

import torch
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.transformer_flux import FluxAttnProcessor
from torch import nn
from torch.nn import functional as F


class MultiIDCrossAttention(nn.Module):
    """Image-stream queries attend to the identity tokens C_ID of one dual-stream block.

    K/V projections have no bias, so scaling the tokens by lambda scales K and V by lambda, and the
    per-block K/V of an image can be cached across sampling steps whichever way lambda is applied.
    The output projection has no bias and starts at zero: an untrained branch leaves the backbone
    unchanged, and lambda = 0 switches identity off exactly in both gating modes.

    With ``rotate_queries``, the queries are rotated by the backbone's rotary embedding of their image
    position while the keys stay unrotated: ``q(x) . k`` then varies with the query's absolute position,
    so each reference's keys (which carry its slot embedding) can prefer a region of the image. The
    hidden states themselves carry no absolute position in FLUX (RoPE acts inside attention only), and
    without it "reference k is the k-th person from the left" cannot be learned.
    """

    def __init__(self, dim: int, token_dim: int, heads: int, head_dim: int, rotate_queries: bool = False):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim, self.rotate_queries = heads, head_dim, rotate_queries
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(token_dim, inner, bias=False)
        self.to_v = nn.Linear(token_dim, inner, bias=False)
        # No output bias: with lambda on the tokens, lambda = 0 zeroes V and hence the whole residual.
        self.to_out = nn.Linear(inner, dim, bias=False)
        nn.init.zeros_(self.to_out.weight)

    def project_kv(self, c_id: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """C_ID [B, L, D] -> (keys, values), each [B, heads, L, head_dim]."""
        k = self.to_k(c_id).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
        v = self.to_v(c_id).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
        return k, v

    def forward(
        self,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attn_mask: torch.Tensor | None,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """hidden_states [B, S, dim], keys/values [B, heads, L, head_dim], attn_mask [B, 1, 1, L] bool (None: every key is real),
        rotary: the image tokens' (cos, sin) [S, head_dim] (used with ``rotate_queries``) -> [B, S, dim]."""
        q = self.to_q(hidden_states).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
        if self.rotate_queries:
            if rotary is None:
                raise ValueError("rotary: this cross-attention rotates its queries and needs the image rotary embedding")
            q = apply_rotary_emb(q, rotary, sequence_dim=2)
        out = F.scaled_dot_product_attention(q, keys.to(q.dtype), values.to(q.dtype), attn_mask=attn_mask)
        return self.to_out(out.transpose(1, 2).flatten(2))


def attention_mask(key_mask: torch.Tensor) -> torch.Tensor:
    """Key mask [B, L] -> SDPA boolean mask [B, 1, 1, L].

    A sample with no valid key would get NaN from softmax; its row is unmasked instead, and its
    output is discarded by the caller (``IdentityCondition.active``).
    """
    return (key_mask | ~key_mask.any(dim=1, keepdim=True))[:, None, None, :]


@dataclasses.dataclass
class IdentityCondition:
    """The encoded identity condition of a batch, independent of sigma.

    Attributes:
        c_id: the unified multi-ID sequence [B, L, D].
        key_mask: [B, L] bool, True for real tokens.
        active: [B] bool, True for samples with at least one reference.
        kv: per-block cached (keys, values) [B, heads, L, head_dim], filled by
            ``IdGlowTransformer.cache_identity`` for sampling; None computes them on every call.
    """

    c_id: torch.Tensor
    key_mask: torch.Tensor
    active: torch.Tensor
    kv: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    def __post_init__(self) -> None:
        # Without padding no mask is passed: SDPA may then use its fastest (flash) kernel.
        self.attn_mask = None if bool(self.key_mask.all()) else attention_mask(self.key_mask)

    @property
    def batch_size(self) -> int:
        return self.c_id.shape[0]


class IdentityInjection:
    """What the processors of one forward call need: the condition, lambda [B] and the gating mode.

    The per-sample output scale is worked out once per forward call, not once per block.
    """

    def __init__(self, condition: IdentityCondition, lam: torch.Tensor, apply_to: str):
        self.condition = condition
        self.apply_to = apply_to
        self.lam = lam
        scale = condition.active.to(lam.dtype)
        if apply_to == "output":
            scale = scale * lam
        self.scale = scale.view(-1, 1, 1)
        # Skipping is exact when nothing in the batch is injected and lambda needs no gradient.
        self.skip = not lam.requires_grad and not bool(scale.any())

    def __call__(self, block: str, module: MultiIDCrossAttention, hidden_states: torch.Tensor,
                 rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor | None:
        """The gated identity residual [B, S, dim] of ``block``, or None when it is zero for every sample."""
        if self.skip:
            return None
        cond = self.condition
        keys, values = cond.kv[block] if cond.kv is not None else module.project_kv(cond.c_id)
        if self.apply_to == "tokens":
            lam = self.lam.to(keys.dtype).view(-1, 1, 1, 1)
            keys, values = keys * lam, values * lam
        out = module(hidden_states, keys, values, cond.attn_mask, rotary)
        return out * self.scale.to(out.dtype)


class IdGlowAttnProcessor(FluxAttnProcessor):
    """diffusers' ``FluxAttnProcessor`` plus, for selected dual-stream blocks, the identity residual.

    Every attention module of the backbone gets one of these (with ``cross_attention=None`` where no
    identity is injected) so that the ``idglow`` keyword is accepted everywhere without warnings.
    The cross-attention module is referenced, not registered: its parameters belong to the identity
    branch, and the backbone's state dict stays that of a plain FLUX model.
    """

    def __init__(self, block: str | None = None, cross_attention: MultiIDCrossAttention | None = None):
        super().__init__()
        self.block = block
        self.cross_attention = cross_attention

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: torch.Tensor | None = None,
        idglow: IdentityInjection | None = None,
    ):
        outputs = super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        if idglow is None or self.cross_attention is None or encoder_hidden_states is None:
            return outputs
        rotary = None
        if image_rotary_emb is not None:  # rows are [text tokens, image tokens]; keep the image rows
            rotary = tuple(t[-hidden_states.shape[1] :] for t in image_rotary_emb)
        residual = idglow(self.block, self.cross_attention, hidden_states, rotary)
        return outputs if residual is None else (*outputs, residual)
