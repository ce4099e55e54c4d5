"""Exporting a finished base run: the transformer as fp16 safetensors (a diffusers folder) with its provenance."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from idglow.runs.load import load_base


def export_base(run: str | Path, out: str | Path, command: str, commit: str) -> dict:
    """Write a finished base run's transformer as fp16 safetensors (diffusers folder) with its provenance."""
    run, out = Path(run), Path(out)
    model, cfg = load_base(run)
    model.flux.to(torch.float16).save_pretrained(out / "transformer", safe_serialization=True)
    if cfg.representation.kind == "latents":
        vae = AutoencoderKL.from_pretrained(cfg.representation.vae, local_files_only=True)
        vae.to(torch.float16).save_pretrained(out / "vae", safe_serialization=True)
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    provenance = {
        "command": command,
        "commit": commit,
        "steps": records[-1]["step"],
        "wall_seconds": records[-1].get("elapsed_seconds"),
        "final_loss": records[-1]["loss"],
        "train_config": json.loads((run / "config.json").read_text()),
    }
    for name in ("eval.json",):
        if (run / name).is_file():
            provenance["eval"] = json.loads((run / name).read_text())
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    (out / "train_config.json").write_text((run / "config.json").read_text())
    return provenance
