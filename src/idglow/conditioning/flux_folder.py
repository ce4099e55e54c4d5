"""FLUX.1 from a local diffusers folder: FLUX.1-dev, FLUX.1 Kontext-dev, or any folder of that layout.

The layout is what ``FluxPipeline.save_pretrained`` writes (and what the FLUX.1 repositories hold):
``model_index.json``, ``transformer/``, ``vae/``, ``text_encoder/`` + ``tokenizer/`` (CLIP-L),
``text_encoder_2/`` + ``tokenizer_2/`` (T5-XXL). Nothing is downloaded: every load is ``local_files_only``.

IdGlow uses the transformer (frozen, with the identity branch and LoRA), the VAE (latents, and decoding
``x0_hat`` for the identity loss) and the two text encoders (through ``FluxPipeline.encode_prompt``, so the
prompt embeddings are exactly the pipeline's). Kontext-dev folders load the same way; IdGlow does not use
Kontext's image-conditioning tokens.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TypeVar

import torch
from diffusers.utils import logging

from idglow.conditioning.config import RepresentationConfig, TextConfig
from idglow.conditioning.text import TruncationCounter

C = TypeVar("C")

PIPELINE_PARTS = ("transformer", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")


def is_pipeline_folder(path: str | Path) -> bool:
    """Whether ``path`` is a diffusers pipeline folder (it holds ``model_index.json``)."""
    return (Path(path) / "model_index.json").is_file()


def check_pipeline_folder(path: str | Path, what: str = "base") -> Path:
    """``path`` as a Path after checking it holds every FLUX part; the error names what is missing."""
    path = Path(path)
    if not is_pipeline_folder(path):
        raise FileNotFoundError(f"{what}: {path} is not a diffusers FLUX folder (no model_index.json)")
    index = json.loads((path / "model_index.json").read_text())
    missing = [p for p in PIPELINE_PARTS if p not in index or not (path / p).is_dir()]
    if missing:
        raise FileNotFoundError(f"{what}: {path} lacks {', '.join(missing)} (a FLUX.1 folder has {', '.join(PIPELINE_PARTS)})")
    return path


def adopt_flux_folder(cfg: C, folder: str | Path) -> C:
    """A copy of a training config (``TrainConfig`` or a subclass) pointed at a FLUX folder: its transformer as the
    backbone, its VAE as the representation and its CLIP + T5 as the text encoder (each section's ``offload`` kept)."""
    folder = check_pipeline_folder(folder)
    model = dataclasses.replace(cfg.model, pretrained=str(folder / "transformer"), preset="flux-dev")
    representation = RepresentationConfig(kind="latents", vae=str(folder / "vae"), offload=cfg.representation.offload)
    text = TextConfig(kind="flux", folder=str(folder), offload=cfg.text.offload)
    return dataclasses.replace(cfg, model=model, representation=representation, text=text)


class FluxPromptEncoder:
    """CLIP-L (pooled [B, 768]) and T5-XXL (states [B, T, 4096]) of a FLUX folder, via ``FluxPipeline.encode_prompt``.

    Same interface as :class:`idglow.conditioning.text.TextEncoder`: ``encode(prompts) -> (states, pooled)`` in float32.

    Args:
        folder: the diffusers FLUX folder.
        max_tokens: T5 sequence length T (FLUX.1-dev: 512).
        device: where the embeddings are returned (and computed, unless ``offload``).
        offload: keep both encoders on the CPU and move each to ``device`` only while it runs
            (diffusers' ``enable_model_cpu_offload``; CUDA only). With a prompt cache they then cost
            no GPU memory during training.
    """

    def __init__(self, folder: str | Path, max_tokens: int, device: torch.device | str = "cpu", offload: bool = False):
        from diffusers import FluxPipeline

        folder = check_pipeline_folder(folder, "text.folder")
        self.device = torch.device(device)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.pipe = FluxPipeline.from_pretrained(folder, transformer=None, vae=None, dtype=dtype,
                                                 local_files_only=True)
        self.pipe.set_progress_bar_config(disable=True)
        if offload and self.device.type == "cuda":
            self.pipe.enable_model_cpu_offload(device=self.device)
        else:
            self.pipe.to(self.device)
        self.max_tokens = max_tokens
        self.dim = self.pipe.text_encoder_2.config.d_model
        self.pooled_dim = self.pipe.text_encoder.config.hidden_size
        self.name = f"flux:{folder.resolve()}:{max_tokens}"
        self._count_truncated = TruncationCounter(max_tokens, "T5")

    @property
    def truncated(self) -> int:
        """Prompts encoded so far that exceeded the T5 length ``max_tokens`` (CLIP always stops at 77, as in FLUX)."""
        return self._count_truncated.truncated

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> (T5 states [B, T, dim], CLIP pooled [B, pooled_dim]), float32 on ``device``."""
        self._count_truncated(prompts, [len(ids) for ids in self.pipe.tokenizer_2(prompts, truncation=False).input_ids])
        pipeline_logger = logging.get_logger("diffusers.pipelines.flux.pipeline_flux")
        level = pipeline_logger.level
        pipeline_logger.setLevel(logging.ERROR)  # its per-batch truncation notices; counted once above instead
        try:
            states, pooled, _ = self.pipe.encode_prompt(prompt=prompts, prompt_2=None, device=self.device,
                                                        max_sequence_length=self.max_tokens)
        finally:
            pipeline_logger.setLevel(level)
        return states.float(), pooled.float()

