"""The IdGlow transformer and its parts."""

from idglow.models.config import TASKS, GateConfig, IdentityConfig, LoraOptions, ModelConfig
from idglow.models.gate import DynamicsAwareGate
from idglow.models.id_attention import IdentityCondition, MultiIDCrossAttention
from idglow.models.identity_branch import IdentityBranch, pad_references
from idglow.models.io import load_identity_branch, load_lora, save_identity_branch, save_lora
from idglow.models.transformer import IdGlowTransformer, build_backbone

__all__ = [
    "TASKS",
    "DynamicsAwareGate",
    "GateConfig",
    "IdGlowTransformer",
    "IdentityBranch",
    "IdentityCondition",
    "IdentityConfig",
    "LoraOptions",
    "ModelConfig",
    "MultiIDCrossAttention",
    "build_backbone",
    "load_identity_branch",
    "load_lora",
    "pad_references",
    "save_identity_branch",
    "save_lora",
]
