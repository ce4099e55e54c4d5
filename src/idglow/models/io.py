"""Saving and loading the trainable parts: the identity branch and the backbone LoRA.

Each is one safetensors file with its JSON config in the file's metadata and beside it
(:mod:`idglow.utils.io`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

from idglow.identity.branch import IdentityBranch
from idglow.identity.config import IdentityConfig
from idglow.identity.gate import DynamicsAwareGate
from idglow.models.config import LoraOptions
from idglow.models.lora import ADAPTER_NAME, add_lora, is_lora_parameter
from idglow.utils.config import ConfigError, from_dict, to_dict
from idglow.utils.io import load_weights, save_weights

IDENTITY_WEIGHTS, IDENTITY_CONFIG = "identity_branch.safetensors", "identity_branch.json"
LORA_WEIGHTS = "lora.safetensors"


def save_identity_branch(model, directory: str | Path, state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``model.identity`` to ``directory/identity_branch.safetensors`` (+ ``.json``); ``state``: its state dict
    when given (e.g. gathered whole from a sharded model), else read from the module."""
    directory = Path(directory)
    branch: IdentityBranch = model.identity
    save_weights(directory / IDENTITY_WEIGHTS, branch.state_dict() if state is None else state, to_dict(branch.config))
    return directory / IDENTITY_WEIGHTS


def read_identity_branch(directory: str | Path) -> tuple[IdentityConfig, dict[str, torch.Tensor]]:
    """``(config, state dict)`` of the identity branch saved in ``directory``; errors name the file."""
    path = Path(directory) / IDENTITY_WEIGHTS
    tensors, config = load_weights(path)
    try:
        return from_dict(IdentityConfig, config), tensors
    except ConfigError as err:
        raise ValueError(f"{path}: {err}") from None


def load_identity_branch(model, directory: str | Path) -> None:
    """Replace ``model``'s identity branch by the one saved in ``directory`` (strict key match)."""
    identity_config, tensors = read_identity_branch(directory)
    old = model.identity
    branch = IdentityBranch.for_backbone(identity_config, model.flux.config)
    try:
        branch.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{Path(directory) / IDENTITY_WEIGHTS}: weights do not match their config: {err}") from None
    param = next(old.parameters())
    model.replace_identity_branch(branch.to(device=param.device, dtype=param.dtype))


def start_identity_branch(model, directory: str | Path) -> None:
    """``model``'s identity branch from the one saved in ``directory``, the run an SFT run starts from (``init``).

    As saved (:func:`load_identity_branch`), or grown: an ``encoder: embedding`` branch into ``model``'s
    ``embedding_map`` branch, otherwise configured alike. Every saved tensor goes to its key; the feature map's path
    (``encoder.map_*``) keeps its initialisation, whose zero output projection makes the model the saved one.
    """
    saved, tensors = read_identity_branch(directory)
    mine = model.identity.config
    if not (mine.encoder == "embedding_map" and saved.encoder == "embedding"):
        load_identity_branch(model, directory)
        return
    path = Path(directory) / IDENTITY_WEIGHTS
    if dataclasses.replace(saved, encoder=mine.encoder, map_dim=mine.map_dim) != mine:
        raise ValueError(f"{path}: an embedding branch grows into an embedding_map one only when configured alike "
                         f"otherwise; saved {to_dict(saved)}, asked {to_dict(mine)}")
    # the saved tensors plus the map's own initialisation, and nothing else, then a strict load: any other missing or
    # extra key is an error
    grown = {k: v for k, v in model.identity.state_dict().items() if k.startswith("encoder.map_") and k not in tensors}
    try:
        model.identity.load_state_dict({**grown, **tensors}, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit the grown branch: {err}") from None


def load_gate(directory: str | Path) -> DynamicsAwareGate:
    """The Dynamics-Aware Gate of the identity branch saved in ``directory`` (its config and, for learned
    schedules, its weights)."""
    identity_config, tensors = read_identity_branch(directory)
    gate = DynamicsAwareGate(identity_config.gate)
    gate.load_state_dict({k[len("gate."):]: v for k, v in tensors.items() if k.startswith("gate.")}, strict=True)
    return gate


def save_lora(model, directory: str | Path, backbone_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the backbone's LoRA weights to ``directory/lora.safetensors`` (+ ``.json``); ``backbone_state``: the
    backbone's state entries to take them from (e.g. gathered whole from a sharded model), else the module's."""
    if model.config.lora.rank == 0:
        raise ValueError("lora.rank: the model has no LoRA to save")
    state = get_peft_model_state_dict(model.flux, state_dict=backbone_state, adapter_name=ADAPTER_NAME)
    return write_lora(directory, state, model.config.lora)


def write_lora(directory: str | Path, state: dict[str, torch.Tensor], options: LoraOptions) -> Path:
    """Write a LoRA ``(state, options)``, as :func:`read_lora` returns them, to ``directory/lora.safetensors``."""
    path = Path(directory) / LORA_WEIGHTS
    save_weights(path, state, to_dict(options))
    return path


def read_lora(directory: str | Path) -> tuple[dict[str, torch.Tensor], LoraOptions]:
    """``(state, options)`` of the LoRA saved by :func:`save_lora` in ``directory``; errors name the file."""
    path = Path(directory) / LORA_WEIGHTS
    tensors, config = load_weights(path)
    try:
        return tensors, from_dict(LoraOptions, config)
    except ConfigError as err:
        raise ValueError(f"{path}: {err}") from None


def lora_state(model) -> tuple[dict[str, torch.Tensor], LoraOptions]:
    """``(state, options)`` of ``model``'s backbone LoRA (as :func:`save_lora` writes them)."""
    if model.config.lora.rank == 0:
        raise ValueError("lora.rank: the model has no LoRA")
    return get_peft_model_state_dict(model.flux, adapter_name=ADAPTER_NAME), model.config.lora


def apply_lora(model, tensors: dict[str, torch.Tensor], options: LoraOptions, source: str = "lora") -> None:
    """Put LoRA weights into ``model``'s backbone (adding the adapter when it has none); ``source`` names them in errors."""
    if model.config.lora.rank == 0:
        add_lora(model.flux, options)
        model.config.lora = options
    elif to_dict(options) != to_dict(model.config.lora):
        raise ValueError(f"{source}: saved LoRA config {to_dict(options)} differs from the model's {to_dict(model.config.lora)}")
    param = next(model.flux.parameters())
    tensors = {k: v.to(device=param.device) for k, v in tensors.items()}
    result = set_peft_model_state_dict(model.flux, tensors, adapter_name=ADAPTER_NAME)
    if result.unexpected_keys:
        raise ValueError(f"{source}: unexpected LoRA keys, e.g. {result.unexpected_keys[:3]}")
    missing = [k for k in result.missing_keys if is_lora_parameter(k)]
    if missing:
        raise ValueError(f"{source}: missing LoRA keys, e.g. {missing[:3]}")


def load_lora(model, directory: str | Path) -> None:
    """Load LoRA weights saved by :func:`save_lora` into ``model`` (adds the adapter if missing)."""
    tensors, options = read_lora(directory)
    apply_lora(model, tensors, options, str(Path(directory) / LORA_WEIGHTS))
