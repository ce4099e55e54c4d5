"""Configuration of the IdGlow transformer: backbone preset, identity branch and LoRA."""

from __future__ import annotations

import dataclasses
from typing import Literal

from idglow.identity.config import IdentityConfig
from idglow.models.presets import FLUX_PRESETS
from idglow.utils.config import option, require_min, validate_sections


@dataclasses.dataclass
class LoraOptions:
    """LoRA on the backbone (peft, through diffusers' adapter API)."""

    rank: int = option(0, "LoRA rank; 0 trains no LoRA")
    alpha: float = option(0.0, "LoRA alpha; 0 means alpha = rank (scale 1)")
    dropout: float = option(0.0, "LoRA dropout")
    target_modules: list[str] = option(
        help="backbone module names that get LoRA (diffusers' FLUX DreamBooth-LoRA set by default)",
        factory=lambda: [
            "attn.to_k",
            "attn.to_q",
            "attn.to_v",
            "attn.to_out.0",
            "attn.add_k_proj",
            "attn.add_q_proj",
            "attn.add_v_proj",
            "attn.to_add_out",
            "ff.net.0.proj",
            "ff.net.2",
            "ff_context.net.0.proj",
            "ff_context.net.2",
        ],
    )

    def validate(self) -> None:
        """Check rank, alpha and dropout ranges."""
        if self.rank < 0:
            raise ValueError(f"rank: must be >= 0, got {self.rank}")
        if self.alpha < 0:
            raise ValueError(f"alpha: must be >= 0, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: must lie in [0, 1), got {self.dropout}")
        if self.rank and not self.target_modules:
            raise ValueError("target_modules: empty, but rank > 0")


@dataclasses.dataclass
class ModelConfig:
    """The IdGlow transformer: a diffusers FLUX backbone plus the identity branch."""

    preset: Literal["tiny", "small", "flux-dev"] = option("small", "backbone size preset")
    in_channels: int | None = option(None, "packed input channels of the backbone (null = the preset's)")
    text_dim: int | None = option(
        None, "width of the prompt token states and pooled vector (null = the preset's; 384 for MiniLM)"
    )
    num_layers: int | None = option(None, "dual-stream blocks (null = the preset's); with the next two, for width/depth sweeps")
    num_single_layers: int | None = option(None, "single-stream blocks (null = the preset's)")
    num_attention_heads: int | None = option(
        None, "attention heads; the width is heads x the preset's head dimension (null = the preset's)"
    )
    pretrained: str | None = option(
        None, "local diffusers folder (or its `transformer` subfolder) with backbone weights; never downloaded"
    )
    guidance: float = option(
        3.5, "guidance scale given to a guidance-distilled backbone (FLUX.1-dev) when the caller passes none")
    identity: IdentityConfig = option(help="identity branch", factory=IdentityConfig)
    lora: LoraOptions = option(help="LoRA on the backbone", factory=LoraOptions)

    def validate(self) -> None:
        """Check the preset and nested sections."""
        if self.preset not in FLUX_PRESETS:
            raise ValueError(f"preset: unknown {self.preset!r}; choose one of {tuple(FLUX_PRESETS)}")
        require_min(self, 1, "in_channels", "text_dim", "num_layers", "num_attention_heads")
        require_min(self, 0, "num_single_layers")
        validate_sections(self, "identity", "lora")
