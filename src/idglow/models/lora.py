"""LoRA on the FLUX backbone through diffusers' peft integration."""

from __future__ import annotations

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
