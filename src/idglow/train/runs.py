"""Finished run folders of the two post-training stages, loaded for generation and evaluation.

An SFT run holds the identity branch (and LoRA) over the shipped base model; a DPO run holds a LoRA
over an SFT run (named in its ``config.json`` as ``sft``). Both load to the same thing: an
:class:`IdGlowTransformer` plus the SFT config that says how to sample it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from idglow.models import IdGlowTransformer, load_lora
from idglow.models.lora import fuse_lora
from idglow.train import sft


def is_dpo_run(run: str | Path) -> bool:
    """Whether ``run`` (with a config.json) was written by ``idglow train dpo``."""
    return "sft" in json.loads((Path(run) / "config.json").read_text())


def check_run(run: str | Path) -> None:
    """Raise FileNotFoundError unless ``run`` is a finished SFT or DPO run folder."""
    run = Path(run)
    if not (run / "config.json").is_file():
        raise FileNotFoundError(f"{run}: no config.json; not a run folder of `idglow train sft` or `train dpo`")
    if not is_dpo_run(run):
        sft.check_run(run)
        return
    if not (run / "final" / "lora.safetensors").is_file():
        raise FileNotFoundError(f"{run / 'final'}: no lora.safetensors; finish (or resume) the DPO run first")
    sft.check_run(json.loads((run / "config.json").read_text())["sft"])


def load_policy(sft_run: str | Path, dtype: torch.dtype = torch.float32) -> tuple[IdGlowTransformer, object]:
    """The SFT model of ``sft_run`` with its LoRA (if any) merged into the backbone: what DPO starts from
    and uses as its reference. Returns ``(model, SFTConfig)``."""
    model, cfg = sft.load_sft(sft_run, dtype)
    fuse_lora(model)
    return model, cfg


def load_run(run: str | Path, dtype: torch.dtype = torch.float32) -> tuple[IdGlowTransformer, object]:
    """The model (eval mode) and SFT config of a finished SFT or DPO run."""
    check_run(run)
    if not is_dpo_run(run):
        return sft.load_sft(run, dtype)
    model, cfg = load_policy(json.loads((Path(run) / "config.json").read_text())["sft"], dtype)
    load_lora(model, Path(run) / "final")
    return model.eval(), cfg
