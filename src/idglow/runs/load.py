"""Finished run folders, loaded for generation and evaluation without the training engine.

A base run (or an exported base model, as shipped in ``assets/base``, or a diffusers FLUX folder) holds the
backbone; an SFT run holds the identity branch (and LoRA) over a base model named in its ``config.json``
as ``base``; a DPO run holds a LoRA over an SFT run (named as ``sft``). SFT and DPO runs load to the same
thing: an :class:`IdGlowTransformer` plus the SFT config that says how to sample it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from diffusers import FluxTransformer2DModel
from safetensors import SafetensorError

from idglow.conditioning.flux_folder import adopt_flux_folder, is_pipeline_folder
from idglow.models import IdGlowTransformer, load_identity_branch, load_lora
from idglow.models.io import LORA_WEIGHTS, apply_lora, read_lora
from idglow.models.config import LoraOptions
from idglow.models.lora import concat_loras, fuse_lora
from idglow.recipes.sft import SFTConfig
from idglow.recipes.train import TrainConfig
from idglow.utils.config import from_dict

PARENT = "parent.json"  # in a DPO run's final/: the SFT run and its weights fingerprint
EXPORTED = "provenance.json"  # marks an exported IdGlow model (beside transformer/, train_config.json, final/)


def is_exported_model(folder: str | Path) -> bool:
    """Whether ``folder`` is an IdGlow model written by ``idglow train export`` from an SFT or DPO run: an SFT
    run layout (``config.json``, ``final/identity_branch.safetensors``) whose backbone, every LoRA merged,
    is in the folder itself (``transformer/``, ``train_config.json``: also a base model)."""
    folder = Path(folder)
    return all((folder / p).is_file() for p in (EXPORTED, "config.json", "train_config.json", "transformer/config.json"))


def load_base(run: str | Path, dtype: torch.dtype = torch.float32, quantization_config=None
              ) -> tuple[IdGlowTransformer, TrainConfig]:
    """The model and training config of a finished base run (``run/final/transformer``, ``run/config.json``),
    an exported one (``transformer``, ``train_config.json``, as shipped in ``assets/base``) or a FLUX folder;
    ``quantization_config``: a diffusers quantization config for the transformer (e.g. ``TorchAoConfig``)."""
    run = Path(run)
    if is_pipeline_folder(run):
        return load_flux_folder(run, dtype, quantization_config)
    exported = (run / "train_config.json").is_file()
    cfg = from_dict(TrainConfig, json.loads((run / ("train_config.json" if exported else "config.json")).read_text()))
    folder = run / "transformer" if exported else run / "final" / "transformer"
    if exported and cfg.representation.kind == "latents":  # an exported model carries its autoencoder
        cfg = dataclasses.replace(cfg, representation=dataclasses.replace(cfg.representation, vae=str(run / "vae")))
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no final transformer; finish (or resume) the run first")
    return IdGlowTransformer(cfg.model, backbone=_transformer(folder, dtype, quantization_config)).eval(), cfg


def load_flux_folder(folder: Path, dtype: torch.dtype = torch.float32, quantization_config=None
                     ) -> tuple[IdGlowTransformer, TrainConfig]:
    """The transformer of a diffusers FLUX folder, with the config that reads its VAE and text encoders."""
    cfg = adopt_flux_folder(TrainConfig(), folder)
    return IdGlowTransformer(cfg.model, backbone=_transformer(folder / "transformer", dtype, quantization_config)).eval(), cfg


def _transformer(folder: Path, dtype: torch.dtype, quantization_config=None) -> FluxTransformer2DModel:
    """diffusers' FLUX transformer from a local folder (quantized by diffusers when ``quantization_config`` is given);
    a broken or foreign file is an error naming the folder."""
    try:
        return FluxTransformer2DModel.from_pretrained(folder, torch_dtype=dtype, local_files_only=True,
                                                      quantization_config=quantization_config)
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        raise ValueError(f"{folder}: cannot load the transformer ({type(err).__name__}: {err})") from None


def is_dpo_run(run: str | Path) -> bool:
    """Whether ``run`` (with a config.json) was written by ``idglow train dpo``."""
    return "sft" in json.loads((Path(run) / "config.json").read_text())


def check_sft_run(run: str | Path) -> None:
    """Raise FileNotFoundError unless ``run`` is a finished SFT run folder (config.json, final identity branch)."""
    run = Path(run)
    if not (run / "config.json").is_file():
        raise FileNotFoundError(f"{run}: no config.json; not an SFT run folder")
    if not (run / "final" / "identity_branch.safetensors").is_file():
        raise FileNotFoundError(f"{run / 'final'}: no identity_branch.safetensors; finish (or resume) the run first")


def check_run(run: str | Path) -> None:
    """Raise FileNotFoundError unless ``run`` is a finished SFT or DPO run folder (a DPO run's SFT run included)."""
    run = Path(run)
    if not (run / "config.json").is_file():
        raise FileNotFoundError(f"{run}: no config.json; not a run folder of `idglow train sft` or `train dpo`")
    if not is_dpo_run(run):
        check_sft_run(run)
        return
    if not (run / "final" / "lora.safetensors").is_file():
        raise FileNotFoundError(f"{run / 'final'}: no lora.safetensors; finish (or resume) the DPO run first")
    check_sft_run(json.loads((run / "config.json").read_text())["sft"])


def load_sft(run: str | Path, dtype: torch.dtype = torch.float32, base: str | Path | None = None,
             lora: bool = True, quantization_config=None) -> tuple[IdGlowTransformer, SFTConfig]:
    """The model (base backbone + trained identity branch and LoRA) and config of a finished SFT run.

    ``base`` replaces the base model the run names (e.g. a FLUX folder that moved since training); ``lora=False``
    leaves the run's LoRA out (the caller adds it, as :func:`load_run` does for DPO runs); ``quantization_config``:
    see :func:`load_base`."""
    run = Path(run)
    check_sft_run(run)
    cfg = from_dict(SFTConfig, json.loads((run / "config.json").read_text()))
    if is_exported_model(run):  # self-contained: its own backbone, wherever the folder was copied to
        cfg = dataclasses.replace(cfg, base=str(run), out=str(run))
    if base is not None:
        cfg = dataclasses.replace(cfg, base=str(base))
    final = run / "final"
    base, _ = load_base(cfg.base, dtype, quantization_config)
    # LoRA is added by load_lora from its own saved config; the backbone comes from the base folder.
    model = IdGlowTransformer(dataclasses.replace(cfg.model, lora=LoraOptions(), pretrained=None), backbone=base.flux)
    load_identity_branch(model, final)
    if lora and (final / LORA_WEIGHTS).is_file():
        load_lora(model, final)
    return model.eval(), cfg


def load_policy(sft_run: str | Path, dtype: torch.dtype = torch.float32) -> tuple[IdGlowTransformer, SFTConfig]:
    """The SFT model of ``sft_run`` with its LoRA (if any) merged into the backbone: what DPO starts from
    and uses as its reference. Returns ``(model, SFTConfig)``."""
    model, cfg = load_sft(sft_run, dtype)
    fuse_lora(model)
    return model, cfg


def weights_fingerprint(run: str | Path) -> str:
    """What a finished SFT or DPO run's weights are: sha256 (16 hex digits) of its ``final/*.safetensors`` (a DPO run's
    SFT run's included). Generation sidecars and DPO runs record it, so outputs of other weights are never reused."""
    run = Path(run)
    files = sorted((run / "final").glob("*.safetensors"))
    if is_exported_model(run):
        files += sorted((run / "transformer").glob("*.safetensors"))
    if is_dpo_run(run):
        files = sorted((Path(json.loads((run / "config.json").read_text())["sft"]) / "final").glob("*.safetensors")) + files
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def check_dpo_parent(run: str | Path) -> None:
    """Refuse a DPO run whose SFT run has been retrained since (its ``final/parent.json`` records the SFT weights)."""
    parent = Path(run) / "final" / PARENT
    if not parent.is_file():  # written by every DPO run since the fingerprints; older runs cannot be checked
        return
    recorded = json.loads(parent.read_text())
    now = weights_fingerprint(recorded["sft"])
    if now != recorded["sft_weights"]:
        raise ValueError(f"{run}: its SFT run {recorded['sft']} changed since this DPO run was trained (weights "
                         f"{recorded['sft_weights']} then, {now} now); retrain the DPO run on it")


def sft_folder(run: str | Path) -> Path:
    """The SFT run (or exported model) holding a finished run's identity branch: a DPO run's ``sft``, else ``run``."""
    check_run(run)
    return Path(json.loads((Path(run) / "config.json").read_text())["sft"]) if is_dpo_run(run) else Path(run)


def run_adapter(run: str | Path) -> tuple[dict[str, torch.Tensor], LoraOptions] | None:
    """A finished SFT or DPO run's backbone LoRA as one adapter ``(state, options)`` (a DPO run's stacked on its SFT
    run's by :func:`idglow.models.lora.concat_loras`, exact), or None when it has none."""
    sft = sft_folder(run)
    adapters = [read_lora(sft / "final")] if (sft / "final" / LORA_WEIGHTS).is_file() else []
    if is_dpo_run(run):
        adapters.append(read_lora(Path(run) / "final"))
        return concat_loras(adapters)
    return adapters[0] if adapters else None


def load_run(run: str | Path, dtype: torch.dtype = torch.float32, base: str | Path | None = None,
             quantization_config=None) -> tuple[IdGlowTransformer, SFTConfig]:
    """The model (eval mode) and SFT config of a finished SFT or DPO run (``base``, ``quantization_config``: see
    :func:`load_sft`).

    The backbone stays the base model's, untouched: a DPO run's LoRA and its SFT run's are stacked into one adapter
    (:func:`idglow.models.lora.concat_loras`, exact), so switching the adapter off gives the base model back."""
    check_run(run)
    if not is_dpo_run(run):
        return load_sft(run, dtype, base, quantization_config=quantization_config)
    check_dpo_parent(run)
    sft = sft_folder(run)
    model, cfg = load_sft(sft, dtype, base, lora=False, quantization_config=quantization_config)
    apply_lora(model, *run_adapter(run), source=f"{run}/final + {sft}/final LoRA")
    return model.eval(), cfg
