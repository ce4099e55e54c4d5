"""Filling the disk caches of a training config before training (``idglow cache build``): image latents and
prompt embeddings. The trainers fill the same caches lazily; building them first lets a multi-GPU run start
straight away, with the VAE and text encoders never loaded on the GPUs that train.
"""

from __future__ import annotations

import torch

from idglow.conditioning.cache import TensorCache
from idglow.conditioning.precompute import encode_latents
from idglow.conditioning.representation import build_representation
from idglow.conditioning.text import build_text_encoder
from idglow.data.images import CaptionedImages
from idglow.recipes.sft import SFTConfig
from idglow.runs.adopt import resolve_sft


def build_caches(cfg, progress: bool = True) -> dict:
    """Fill ``cfg.data.cache_dir`` for every image and prompt of ``cfg.data.manifests`` (an SFT or base config).

    Returns counts: images, prompts, and the cache's hits and misses per kind.
    """
    if not cfg.data.cache_dir:
        raise ValueError("data.cache_dir: set a cache folder (e.g. --data.cache_dir cache/flux-dev)")
    if isinstance(cfg, SFTConfig):
        cfg = resolve_sft(cfg)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = CaptionedImages(cfg.data.manifests, progress=progress)
    rep = build_representation(cfg.representation, *data.size).to(device)
    summary = {"images": len(data), "prompts": len(set(data.prompts)), "cache_dir": cfg.data.cache_dir}
    if cfg.representation.kind == "latents":
        before = _count(cfg.data.cache_dir, "latents")
        encode_latents(data, rep, cfg.data.cache_dir, progress)
        summary["latents_written"] = _count(cfg.data.cache_dir, "latents") - before
    text = build_text_encoder(cfg.text, cfg.data.max_tokens, device, cfg.data.cache_dir)
    before = _count(cfg.data.cache_dir, "text")
    text.precompute(data.prompts, progress)
    summary["prompts_written"] = _count(cfg.data.cache_dir, "text") - before
    return summary


def _count(cache_dir: str, namespace: str) -> int:
    return len(list(TensorCache(cache_dir, namespace).root.rglob("*.safetensors")))
