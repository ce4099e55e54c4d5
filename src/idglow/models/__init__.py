"""The IdGlow transformer: diffusers' ``FluxTransformer2DModel`` (unmodified) with the identity branch, LoRA and I/O."""

from idglow.models.config import LoraOptions, ModelConfig
from idglow.models.io import load_identity_branch, load_lora, save_identity_branch, save_lora
from idglow.models.transformer import IdGlowTransformer, build_backbone

__all__ = [
    "IdGlowTransformer",
    "LoraOptions",
    "ModelConfig",
    "build_backbone",
    "load_identity_branch",
    "load_lora",
    "save_identity_branch",
    "save_lora",
]
