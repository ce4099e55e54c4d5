"""LoRA on the FLUX backbone through diffusers' peft integration."""

from __future__ import annotations

import contextlib

import torch
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


def bare_backbone(flux: FluxTransformer2DModel) -> FluxTransformer2DModel:
    """A copy of ``flux`` without its LoRA adapters (the weights under them, unmerged): what to save as the base."""
    state = {k.replace(".base_layer.", "."): v for k, v in flux.state_dict().items() if not is_lora_parameter(k)}
    bare = FluxTransformer2DModel.from_config(flux.config).to(dtype=next(flux.parameters()).dtype)
    bare.load_state_dict(state, strict=True)
    return bare


def is_lora_parameter(name: str) -> bool:
    """Whether a parameter (by its ``named_parameters`` name) belongs to a LoRA adapter (peft's ``lora_A``/``lora_B``)."""
    return "lora_" in name


def concat_loras(adapters: list[tuple[dict[str, torch.Tensor], LoraOptions]]) -> tuple[dict[str, torch.Tensor], LoraOptions]:
    """One LoRA whose update is the sum of several: ``W + sum_i s_i B_i A_i = W + [s_1 B_1 ... s_k B_k] [A_1; ...; A_k]``.

    Exact (no merge into the backbone, no rank truncation), so a model with stacked adapters (SFT's LoRA, then
    DPO's on the SFT-merged backbone) stays "base backbone + one removable adapter".

    Args:
        adapters: ``(state, options)`` per adapter; ``state`` as peft's ``get_peft_model_state_dict`` gives it
            (``<module>.lora_A.weight`` [r_i, in], ``<module>.lora_B.weight`` [out, r_i]).

    Returns:
        ``(state, options)``: rank ``sum r_i``, alpha = rank (scale 1: each ``s_i = alpha_i / r_i`` is folded into
        its B), no dropout, the union of the target modules; a module one adapter lacks gets zeros for its part.
    """
    if not adapters:
        raise ValueError("concat_loras: no adapters given")
    modules: dict[str, tuple[int, int]] = {}  # module -> (in_features, out_features)
    for state, _ in adapters:
        for key, value in state.items():
            if key.endswith(".lora_A.weight"):
                modules.setdefault(key[: -len(".lora_A.weight")], (value.shape[1], state[key.replace("lora_A", "lora_B")].shape[0]))
    merged: dict[str, torch.Tensor] = {}
    for module, (fan_in, fan_out) in modules.items():
        a_parts, b_parts = [], []
        for state, options in adapters:
            scale = (options.alpha or options.rank) / options.rank
            a = state.get(f"{module}.lora_A.weight")
            b = state.get(f"{module}.lora_B.weight")
            a_parts.append(a.float() if a is not None else torch.zeros(options.rank, fan_in))
            b_parts.append(b.float() * scale if b is not None else torch.zeros(fan_out, options.rank))
        merged[f"{module}.lora_A.weight"] = torch.cat(a_parts, dim=0)
        merged[f"{module}.lora_B.weight"] = torch.cat(b_parts, dim=1)
    rank = sum(options.rank for _, options in adapters)
    targets = list(dict.fromkeys(t for _, options in adapters for t in options.target_modules))
    return merged, LoraOptions(rank=rank, alpha=float(rank), dropout=0.0, target_modules=targets)


def lora_ranks(state: dict[str, torch.Tensor], options: LoraOptions, start: int, stop: int
               ) -> tuple[dict[str, torch.Tensor], LoraOptions]:
    """The adapter held by ranks ``[start, stop)`` of a stacked one: :func:`concat_loras`' inverse for one part, exact.

    Args:
        state: a stacked adapter's weights (``<module>.lora_A.weight`` [r, in], ``<module>.lora_B.weight`` [out, r]).
        options: its options; ``alpha / rank`` is folded into the part's B, so the part has alpha = its rank.
        start, stop: the part's ranks, e.g. ``0, r_sft`` for SFT's adapter of an SFT+DPO model.
    """
    if not 0 <= start < stop <= options.rank:
        raise ValueError(f"lora ranks [{start}, {stop}): outside the adapter's rank {options.rank}")
    scale = (options.alpha or options.rank) / options.rank
    part: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".lora_A.weight"):
            part[key] = value[start:stop].clone()
        elif key.endswith(".lora_B.weight"):
            part[key] = value[:, start:stop] * scale
    rank = stop - start
    return part, LoraOptions(rank=rank, alpha=float(rank), dropout=0.0, target_modules=list(options.target_modules))
