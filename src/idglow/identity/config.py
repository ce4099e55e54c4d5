"""Configuration of the identity branch: encoder, aggregator, Multi-ID cross-attention and the Dynamics-Aware Gate."""

from __future__ import annotations

import dataclasses
from typing import Literal

from idglow.identity.schedules import ScheduleConfig
from idglow.utils.config import option, require_min, validate_sections
from idglow.utils.defaults import TASKS


def _group_schedule() -> ScheduleConfig:
    return ScheduleConfig(kind="linear_decay", lambda_min=0.0, lambda_max=1.0)


def _age_schedule() -> ScheduleConfig:
    return ScheduleConfig(kind="window", lambda_min=0.0, lambda_max=1.0, sigma_lo=0.3, sigma_hi=0.7, edge_width=0.1)


@dataclasses.dataclass
class GateConfig:
    """The Dynamics-Aware Gate: one lambda(sigma) schedule per task, and where lambda is applied."""

    group: ScheduleConfig = option(
        help="schedule of task `group` (direct multi-person fusion)", factory=_group_schedule
    )
    age: ScheduleConfig = option(help="schedule of task `age` (adults rendered as children)", factory=_age_schedule)
    apply_to: Literal["output", "tokens"] = option(
        "output",
        "multiply lambda into the cross-attention output (lambda = 0 switches identity off exactly) "
        "or into the identity tokens before K/V, as drawn in the paper's figure",
    )
    embedding_dim: int = option(64, "width of the sinusoidal sigma embedding and task embedding of a learned gate")

    def validate(self) -> None:
        """Check each task's schedule; errors name the task."""
        validate_sections(self, *TASKS)
        if self.embedding_dim < 2 or self.embedding_dim % 2:
            raise ValueError(f"embedding_dim: must be an even number >= 2, got {self.embedding_dim}")


@dataclasses.dataclass
class IdentityConfig:
    """The identity branch: encoder, aggregator and Multi-ID cross-attention."""

    encoder: Literal["conv", "embedding", "embedding_map"] = option(
        "conv",
        "identity encoder: `conv` (trainable, on face crops [B, N, 3, H, W]), `embedding` (trainable "
        "resampler over frozen face embeddings [B, N, E], e.g. dlib 128-d or ArcFace 512-d) or `embedding_map` "
        "(the cast `encoder`'s embedding and its 4x4 feature map before pooling, [B, N, E + 16*map_dim]: where a "
        "feature lies reaches the tokens; a run trained with `embedding` can be its `init`)",
    )
    embedding_dim: int = option(128, "embedding encoders only: size E of the frozen face embedding")
    map_dim: int = option(128, "embedding_map only: channels C of the frozen encoder's feature map")
    encoder_width: int = option(64, "conv encoder only: channels of its widest convolution")
    num_tokens: int = option(4, "K: tokens per reference identity")
    token_dim: int = option(128, "D: width of the identity tokens C_ID")
    max_refs: int = option(4, "N_max: most reference identities per sample")
    attention_heads: int | None = option(
        None,
        "heads of each Multi-ID cross-attention, of the backbone's head size (null = half the backbone's "
        "heads: a narrower identity attention, as in PuLID-FLUX, keeps the branch cheap)",
    )
    text_tokens: bool = option(False, "append the prompt's token states to C_ID (the figure's purple tokens)")
    rotate_queries: bool = option(
        True,
        "rotate the identity queries by their image position (backbone RoPE; keys unrotated), so a reference "
        "can bind to a region of the image: what 'reference k is the k-th person from the left' needs",
    )
    blocks: list[int] | None = option(
        None, "indices of the dual-stream blocks that get Multi-ID cross-attention (null = all)"
    )
    gate: GateConfig = option(help="Dynamics-Aware Gate", factory=GateConfig)

    def validate(self) -> None:
        """Check sizes are positive; errors name the field."""
        require_min(self, 1, "embedding_dim", "map_dim", "encoder_width", "num_tokens", "token_dim", "max_refs",
                    "attention_heads")
        if self.blocks is not None and len(set(self.blocks)) != len(self.blocks):
            raise ValueError(f"blocks: duplicate block index in {self.blocks}")
        validate_sections(self, "gate")

    @property
    def reads_embeddings(self) -> bool:
        """Whether the encoder reads frozen embeddings of the references (not the crops themselves)."""
        return self.encoder in ("embedding", "embedding_map")
