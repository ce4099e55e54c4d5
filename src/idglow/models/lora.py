"""LoRA on the FLUX backbone through diffusers' peft integration."""

from __future__ import annotations

import contextlib

from diffusers import FluxTransformer2DModel
from peft import LoraConfig

from idglow.models.config import LoraOptions

ADAPTER_NAME = "default"


def lora_config(options: LoraOptions) -> LoraConfig:
    """The peft ``LoraConfig`` for ``options``; LoRA-B starts at zero, so the backbone is unchanged."""
    return LoraConfig(
        r=options.rank,
        lora_alpha=options.alpha or options.rank,
        lora_dropout=options.dropout,
        init_lora_weights="gaussian",
        target_modules=list(options.target_modules),
    )


def add_lora(flux: FluxTransformer2DModel, options: LoraOptions) -> None:
    """Inject LoRA adapters into ``flux`` (in place); only their weights are trainable afterwards."""
    options.validate()
    try:
        flux.add_adapter(lora_config(options), adapter_name=ADAPTER_NAME)
    except ValueError as err:  # peft: a target module name matches nothing
        raise ValueError(f"lora.target_modules: {err}") from None


def fuse_lora(model) -> None:
    """Merge the backbone LoRA of an :class:`IdGlowTransformer` into its weights and drop the adapter layers.

    The outputs are unchanged up to float rounding. DPO fuses the SFT LoRA this way, so the reference
    model is "the backbone with every adapter disabled" and the DPO adapter can take the default name.
    """
    if model.config.lora.rank == 0:
        return
    model.flux.fuse_lora(lora_scale=1.0)
    model.flux.unload_lora()
    model.config.lora = LoraOptions()


@contextlib.contextmanager
def adapters_disabled(flux: FluxTransformer2DModel):
    """Within the block, ``flux`` runs without its LoRA adapters (peft's switch, no weight copy)."""
    flux.disable_adapters()
    try:
        yield flux
    finally:
        flux.enable_adapters()


def is_lora_parameter(name: str) -> bool:
    """Whether a parameter (by its ``named_parameters`` name) belongs to a LoRA adapter (peft's ``lora_A``/``lora_B``)."""
    return "lora_" in name
