"""What a stage inherits from the run it starts from, resolved once into a new config.

An SFT run inherits its backbone, image representation, prompt length and flow shift from its base
model (an exported cast base model or a diffusers FLUX folder); a DPO run inherits model,
representation, text encoder, prompt length and flow shift from its SFT run. A field the user set to
something else is refused, naming it; a field left at its default takes the inherited value. The
config given is never changed: the resolved one is a new object.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from idglow.conditioning.flux_folder import adopt_flux_folder, is_pipeline_folder
from idglow.faces.recognizer import check_recognizer_for_photos
from idglow.identity.config import IdentityConfig
from idglow.recipes.dpo import DPOConfig
from idglow.recipes.sft import SFTConfig
from idglow.recipes.train import TrainConfig
from idglow.models.config import LoraOptions
from idglow.runs.load import check_sft_run, is_exported_model, run_adapter, sft_folder
from idglow.utils.config import ConfigError, from_dict, to_dict

C = TypeVar("C")


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _with(cfg: C, key: str, value: Any) -> C:
    """A copy of ``cfg`` with the dotted ``key`` replaced (nested dataclasses are copied, never mutated)."""
    head, _, rest = key.partition(".")
    return dataclasses.replace(cfg, **{head: _with(getattr(cfg, head), rest, value) if rest else value})


def inherit(cfg: C, inherited: dict[str, Any], source: str) -> C:
    """``cfg`` with each dotted key of ``inherited`` set to its value.

    Raises:
        ConfigError: a key the user changed from its default to something other than the inherited
            value (listing every such key, and ``source``, where the value comes from).
    """
    default = type(cfg)()
    conflicts = [f"{key}: set to {_show(_get(cfg, key))}, but {source} has {_show(value)}"
                 for key, value in inherited.items()
                 if _get(cfg, key) != _get(default, key) and _get(cfg, key) != value]
    if conflicts:
        raise ConfigError("these keys come from " + source + "; remove them from the config:\n  " + "\n  ".join(conflicts))
    for key, value in inherited.items():
        cfg = _with(cfg, key, value)
    return cfg


def _show(value: Any) -> str:
    return json.dumps(to_dict(value) if dataclasses.is_dataclass(value) else value)


def resolve_sft(cfg: SFTConfig) -> SFTConfig:
    """``cfg`` pointed at its base model: backbone weights, representation, prompt length and preset come from there.

    ``base`` is an exported cast base model, or a diffusers FLUX folder (FLUX.1-dev, Kontext-dev): then the
    transformer, VAE and CLIP/T5 come from that folder, and the prompt length and flow shift stay as configured.
    With ``init`` (a finished SFT or DPO run, or an exported IdGlow model), ``base``, ``model.identity`` and
    ``model.lora`` come from that run first.
    """
    if cfg.init:
        fields = init_fields(cfg.init)
        grown = _grown_identity(cfg, fields["model.identity"])
        if grown is not None:
            cfg, fields["model.identity"] = _with(cfg, "model.identity", grown), grown
        cfg = inherit(cfg, fields, f"the run it starts from (init: {cfg.init})")
    base = Path(cfg.base)
    if is_pipeline_folder(base):
        folder = adopt_flux_folder(TrainConfig(), base)
        inherited = {"model.pretrained": folder.model.pretrained, "model.preset": folder.model.preset,
                     "representation": dataclasses.replace(folder.representation, offload=cfg.representation.offload),
                     "text": dataclasses.replace(folder.text, offload=cfg.text.offload)}
        cfg = inherit(cfg, inherited, f"the FLUX folder {base}")
        check_recognizer_for_photos(cfg)
        return cfg
    if not (base / "train_config.json").is_file() or not (base / "transformer" / "config.json").is_file():
        raise FileNotFoundError(f"base: {base} is not an exported base model (transformer/ + train_config.json); "
                                "see `idglow train export`")
    base_cfg = from_dict(TrainConfig, json.loads((base / "train_config.json").read_text()))
    inherited = {"model.pretrained": str(base / "transformer"), "model.preset": base_cfg.model.preset,
                 "representation": base_cfg.representation, "data.max_tokens": base_cfg.data.max_tokens,
                 "flow.shift": base_cfg.flow.shift}
    return inherit(cfg, inherited, f"the base model {base}")


def _grown_identity(cfg: SFTConfig, inherited: IdentityConfig) -> IdentityConfig | None:
    """The one change of the init run's identity config an SFT run may ask for: ``encoder: embedding_map`` (with its
    ``map_dim``) from an ``encoder: embedding`` run, all else inherited; None when not asked. The map's path starts at
    zero, so step 0 is still the init run's model. Anything else set in ``model.identity`` is left for
    :func:`inherit` to refuse; a config resolved before asks for the same."""
    mine = cfg.model.identity
    asked = dataclasses.replace(_get(type(cfg)(), "model.identity"), encoder="embedding_map", map_dim=mine.map_dim)
    grown = dataclasses.replace(inherited, encoder="embedding_map", map_dim=mine.map_dim)
    return grown if inherited.encoder == "embedding" and mine in (asked, grown) else None


def init_fields(run: str | Path) -> dict[str, Any]:
    """What an SFT run started from ``run`` (a finished SFT or DPO run, or an exported model) takes from it: its base
    model, its identity branch's config and the options of its LoRA (one adapter; rank 0 when it has none)."""
    try:
        folder = sft_folder(run)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"init: {err}") from None
    sft = from_dict(SFTConfig, json.loads((folder / "config.json").read_text()))
    adapter = run_adapter(run)
    return {"base": str(folder) if is_exported_model(folder) else sft.base, "model.identity": sft.model.identity,
            "model.lora": adapter[1] if adapter else LoraOptions()}


def resolve_dpo(cfg: DPOConfig) -> tuple[DPOConfig, SFTConfig]:
    """``(cfg with what the policy shares with its SFT run, the SFT run's config)``: model, representation,
    text encoder, prompt length and flow shift."""
    check_sft_run(cfg.sft)
    sft = from_dict(SFTConfig, json.loads((Path(cfg.sft) / "config.json").read_text()))
    inherited = {"model": dataclasses.replace(sft.model, pretrained=None), "representation": sft.representation,
                 "text": sft.text, "data.max_tokens": sft.data.max_tokens, "flow.shift": sft.flow.shift}
    return inherit(cfg, inherited, f"the SFT run {cfg.sft}"), sft
