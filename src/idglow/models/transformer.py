"""The IdGlow transformer: diffusers' ``FluxTransformer2DModel``, unmodified, plus the identity branch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import FluxTransformer2DModel
from torch import nn

from idglow.identity.attention import IdentityCondition, IdentityInjection, IdGlowAttnProcessor
from idglow.identity.branch import IdentityBranch
from idglow.identity.gate import task_indices
from idglow.models.config import ModelConfig
from idglow.models.lora import add_lora, is_lora_parameter
from idglow.models.presets import flux_kwargs


def build_backbone(config: ModelConfig, dtype: torch.dtype = torch.float32) -> FluxTransformer2DModel:
    """A FLUX backbone of ``config.preset``: random weights, or ``config.pretrained`` loaded from disk only."""
    if config.pretrained is None:
        kwargs = flux_kwargs(config.preset, in_channels=config.in_channels, joint_attention_dim=config.text_dim,
                             pooled_projection_dim=config.text_dim, num_layers=config.num_layers,
                             num_single_layers=config.num_single_layers,
                             num_attention_heads=config.num_attention_heads)
        flux = FluxTransformer2DModel(**kwargs)
        return flux if dtype == torch.float32 else flux.to(dtype)
    path = Path(config.pretrained)
    subfolder = "transformer" if (path / "transformer" / "config.json").is_file() else None
    if not (path / (subfolder or "") / "config.json").is_file():
        raise FileNotFoundError(f"pretrained: no diffusers transformer config.json under {path}")
    return FluxTransformer2DModel.from_pretrained(path, subfolder=subfolder, torch_dtype=dtype, local_files_only=True)


class IdGlowTransformer(nn.Module):
    """Velocity model ``v(x_sigma, sigma, prompt, identities, task)``.

    ``self.flux`` is the plain diffusers model; ``self.identity`` holds every added parameter. The
    identity residual enters the chosen dual-stream blocks through :class:`IdGlowAttnProcessor`.
    With an untrained branch, lambda = 0, or no references, the output equals ``self.flux``'s.

    Args:
        config: model configuration.
        backbone: an existing FLUX model to wrap (default: built from ``config``).
    """

    def __init__(self, config: ModelConfig, backbone: FluxTransformer2DModel | None = None):
        super().__init__()
        config.validate()
        self.config = config
        self.flux = backbone if backbone is not None else build_backbone(config)
        self.identity = IdentityBranch.for_backbone(config.identity, self.flux.config)
        self._install_processors()
        if config.lora.rank > 0:
            add_lora(self.flux, config.lora)

    def _install_processors(self) -> None:
        processors = {}
        for name in self.flux.attn_processors:
            parts = name.split(".")  # e.g. transformer_blocks.3.attn.processor
            block = parts[1] if parts[0] == "transformer_blocks" else None
            module = self.identity.cross_attention[block] if block in self.identity.cross_attention else None
            processors[name] = IdGlowAttnProcessor(block if module is not None else None, module)
        self.flux.set_attn_processor(processors)

    def replace_identity_branch(self, branch: IdentityBranch) -> None:
        """Swap in another identity branch (e.g. one loaded from disk) and rewire the processors."""
        self.identity = branch
        self.config.identity = branch.config
        self._install_processors()

    def encode_identity(
        self,
        refs: torch.Tensor,
        ref_mask: torch.Tensor | None = None,
        text_tokens: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> IdentityCondition:
        """Encode references (see :meth:`IdentityBranch.encode`); the result does not depend on sigma."""
        return self.identity.encode(refs, ref_mask, text_tokens, text_mask)

    def identity_condition(self, refs: torch.Tensor, ref_mask: torch.Tensor | None,
                           encoder_hidden_states: torch.Tensor) -> IdentityCondition:
        """Encode one batch's references the way the config says: with ``identity.text_tokens`` the prompt's token
        states [B, T, D_text] join C_ID (the figure's text tokens). What training and sampling both call."""
        text = encoder_hidden_states if self.config.identity.text_tokens else None
        return self.encode_identity(refs, ref_mask, text_tokens=text)

    def cache_identity(self, condition: IdentityCondition) -> IdentityCondition:
        """Precompute every block's K/V of ``condition`` once, for all steps of a sampling run."""
        return self.identity.cache_kv(condition)

    def forward(
        self,
        hidden_states: torch.Tensor,
        sigma: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        pooled_projections: torch.Tensor,
        img_ids: torch.Tensor,
        txt_ids: torch.Tensor,
        identity: IdentityCondition | None = None,
        task: torch.Tensor | Sequence[str] | str = "group",
        guidance: torch.Tensor | None = None,
        lam: torch.Tensor | None = None,
        refs: torch.Tensor | None = None,
        ref_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the velocity ``noise - latents``.

        Args:
            hidden_states: packed noisy latents [B, S, in_channels].
            sigma: noise level [B] in [0, 1] (1 = noise); passed to FLUX as its timestep.
            encoder_hidden_states: prompt token states [B, T, joint_attention_dim].
            pooled_projections: pooled prompt vector [B, pooled_projection_dim].
            img_ids, txt_ids: rotary position ids [S, 3] and [T, 3].
            identity: from :meth:`encode_identity` (None: text-only, the bare backbone).
            task: ``group``/``age`` per sample (names or indices), or one name for the batch.
            guidance: FLUX-dev guidance scale [B] (guidance-distilled backbones only; default ``config.guidance``).
            lam: override the gate with these strengths [B] in [0, 1].
            refs, ref_mask: raw references to encode inside this call (instead of ``identity``), so that a
                training step is one forward of the wrapped module (what DDP expects).

        Returns:
            velocity [B, S, in_channels].
        """
        self._check_inputs(hidden_states, sigma, encoder_hidden_states, pooled_projections)
        if refs is not None:
            if identity is not None:
                raise ValueError("refs: give either refs or an encoded identity, not both")
            identity = self.identity_condition(refs, ref_mask, encoder_hidden_states)
        kwargs = None
        if identity is not None:
            if identity.batch_size != hidden_states.shape[0]:
                raise ValueError(
                    f"identity: encoded for batch {identity.batch_size}, but hidden_states has batch {hidden_states.shape[0]}"
                )
            task_idx = task_indices(task, hidden_states.shape[0], hidden_states.device)
            if lam is None:
                lam = self.identity.gate(sigma, task_idx)
            elif lam.shape != sigma.shape or lam.min() < 0 or lam.max() > 1:
                raise ValueError(f"lam: expected shape {tuple(sigma.shape)} with values in [0, 1]")
            kwargs = {"idglow": IdentityInjection(identity, lam, self.config.identity.gate.apply_to)}
        if guidance is None and self.flux.config.guidance_embeds:
            guidance = sigma.new_full(sigma.shape, self.config.guidance)
        return self.flux(
            hidden_states=hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            pooled_projections=pooled_projections,
            timestep=sigma,
            img_ids=img_ids,
            txt_ids=txt_ids,
            guidance=guidance,
            joint_attention_kwargs=kwargs,
            return_dict=False,
        )[0]

    def _check_inputs(self, hidden_states, sigma, encoder_hidden_states, pooled_projections) -> None:
        fc = self.flux.config
        if hidden_states.ndim != 3 or hidden_states.shape[-1] != fc.in_channels:
            raise ValueError(f"hidden_states: expected [B, S, {fc.in_channels}], got {tuple(hidden_states.shape)}")
        b = hidden_states.shape[0]
        if sigma.shape != (b,):
            raise ValueError(f"sigma: expected shape [{b}], got {tuple(sigma.shape)}")
        if sigma.numel() and (sigma.min() < 0 or sigma.max() > 1):
            raise ValueError("sigma: values must lie in [0, 1] (1 = pure noise)")
        if encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[0] != b or encoder_hidden_states.shape[-1] != fc.joint_attention_dim:
            raise ValueError(
                f"encoder_hidden_states: expected [{b}, T, {fc.joint_attention_dim}], got {tuple(encoder_hidden_states.shape)}"
            )
        if pooled_projections.shape != (b, fc.pooled_projection_dim):
            raise ValueError(
                f"pooled_projections: expected [{b}, {fc.pooled_projection_dim}], got {tuple(pooled_projections.shape)}"
            )

    def trainable_parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part: ``identity`` (the branch) and ``lora`` (backbone adapters)."""
        lora = [p for n, p in self.flux.named_parameters() if is_lora_parameter(n)]
        return {"identity": list(self.identity.parameters()), "lora": lora}
