"""Size presets of the diffusers ``FluxTransformer2DModel`` backbone.

``tiny`` is for tests (< 1 M parameters), ``small`` is the CPU-trainable embedded default, and
``flux-dev`` has FLUX.1-dev's dimensions (its weights come from a local diffusers folder).
"""

from __future__ import annotations

from typing import Any

FLUX_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        patch_size=1,
        in_channels=16,
        num_layers=2,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=False,
        axes_dims_rope=(4, 6, 6),
    ),
    # Text conditioning comes from the offline MiniLM encoder: 384-d token states and pooled vector.
    "small": dict(
        patch_size=1,
        in_channels=16,
        num_layers=4,
        num_single_layers=4,
        attention_head_dim=32,
        num_attention_heads=4,
        joint_attention_dim=384,
        pooled_projection_dim=384,
        guidance_embeds=False,
        axes_dims_rope=(8, 12, 12),
    ),
    "flux-dev": dict(
        patch_size=1,
        in_channels=64,
        num_layers=19,
        num_single_layers=38,
        attention_head_dim=128,
        num_attention_heads=24,
        joint_attention_dim=4096,
        pooled_projection_dim=768,
        guidance_embeds=True,
        axes_dims_rope=(16, 56, 56),
    ),
}


def flux_kwargs(preset: str, **overrides: Any) -> dict[str, Any]:
    """Constructor arguments of ``FluxTransformer2DModel`` for ``preset``, with ``overrides`` applied."""
    if preset not in FLUX_PRESETS:
        raise ValueError(f"preset: unknown model preset {preset!r}; choose one of {tuple(FLUX_PRESETS)}")
    kwargs = dict(FLUX_PRESETS[preset])
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return kwargs
