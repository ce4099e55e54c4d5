"""Inference memory modes of :class:`IdGlowPipeline`, through diffusers and accelerate (not by hand).

- model CPU offload: every large part (text encoders, transformer, VAE) waits in CPU memory and moves to the
  accelerator only while it runs (accelerate's ``cpu_offload_with_hook``, chained as diffusers chains them); the
  identity branch and the reference embedder (a few MB) stay on the accelerator;
- group offload: the transformer's blocks move to the accelerator group by group during each forward
  (diffusers' ``ModelMixin.enable_group_offload``): the least memory, the slowest;
- quantized transformer: a diffusers quantization config at load time (``IdGlowPipeline.from_pretrained(...,
  quantization_config=...)``).
"""

from __future__ import annotations

import torch
from accelerate import cpu_offload_with_hook


def _small_parts_to(pipe, device: torch.device) -> None:
    """Everything but the backbone (the identity branch, the reference embedder: a few MB) lives on ``device``."""
    for name, child in pipe.model.named_children():
        if name != "flux":
            child.to(device)
    if pipe.embedder is not None:
        pipe.embedder.to(device)


def enable_model_cpu_offload(pipe, device: torch.device | str = "cuda") -> None:
    """Keep the pipeline's large parts in CPU memory, each moved to ``device`` only while it runs."""
    device = torch.device(device)
    model = pipe.model
    _small_parts_to(pipe, device)
    text = getattr(pipe.text, "pipe", None)
    if text is not None and device.type != "cpu":  # FLUX's CLIP + T5: diffusers' own offload (accelerators only)
        text.enable_model_cpu_offload(device=device)
    model.flux.to("cpu")
    _, hook = cpu_offload_with_hook(model.flux, execution_device=device)
    hooks = [hook]
    for rep, _ in pipe._representations.values():
        vae = getattr(rep, "vae", None)
        if vae is not None and getattr(vae, "_hf_hook", None) is None:
            vae.to("cpu")
            # decode/encode are wrapped by diffusers' apply_forward_hook, so the hook fires for them too
            _, vae_hook = cpu_offload_with_hook(vae, execution_device=device, prev_module_hook=hooks[-1])
            hooks.append(vae_hook)
    pipe.device, pipe.offload_hooks = device, hooks
    pipe.memory_mode = "model_cpu_offload"


def enable_group_offload(pipe, onload_device: torch.device | str = "cuda", offload_device: torch.device | str = "cpu",
                         num_blocks_per_group: int = 1, use_stream: bool = False) -> None:
    """Move the transformer's blocks to ``onload_device`` ``num_blocks_per_group`` at a time during each forward
    (diffusers' group offloading); everything else lives on ``onload_device``."""
    onload_device = torch.device(onload_device)
    _small_parts_to(pipe, onload_device)
    pipe.model.flux.enable_group_offload(onload_device=onload_device, offload_device=torch.device(offload_device),
                                    offload_type="block_level", num_blocks_per_group=num_blocks_per_group,
                                    use_stream=use_stream)
    pipe.device = onload_device
    pipe.memory_mode = "group_offload"


def onload(pipe) -> None:
    """Before sampling with model CPU offload: bring the transformer to the device now (the identity branch's K/V are
    computed through it before its first forward)."""
    hooks = getattr(pipe, "offload_hooks", None)
    if hooks:
        hooks[0].model._hf_hook.pre_forward(hooks[0].model)
