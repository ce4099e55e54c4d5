"""Computing the disk caches of a training config once: image latents and prompt embeddings (``idglow cache build``).

The trainers call :func:`encode_latents` themselves and fill the same cache lazily; building it first lets
a multi-GPU run start straight away, with the VAE and text encoders never loaded on the GPUs that train.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from idglow.conditioning.cache import TensorCache


def encode_latents(data, rep, cache_dir: str | None, progress: bool = True) -> torch.Tensor:
    """Latent tokens [N, S, C] of every image of ``data`` (CPU, float32), read from the disk cache under
    ``cache_dir`` where present and written there otherwise (None: computed in memory only)."""
    disk = TensorCache(cache_dir, "latents") if cache_dir else None
    keys = data.cache_keys(rep.name) if disk is not None else None
    tokens: list[torch.Tensor | None] = [None] * len(data)
    if disk is not None:
        for i, key in enumerate(keys):
            hit = disk.get(key)
            tokens[i] = hit["tokens"] if hit is not None else None
    missing = [i for i, t in enumerate(tokens) if t is None]
    for start in tqdm(range(0, len(missing), 64), desc="encoding latents", disable=not progress or not missing):
        index = torch.tensor(missing[start : start + 64])
        images, _ = data.batch(index)
        for i, t in zip(index.tolist(), rep.encode(images)):
            tokens[i] = t
            if disk is not None:
                disk.put(keys[i], {"tokens": t})
    return torch.stack(tokens)


def encode_batch_latents(images: torch.Tensor, keys: list[str], rep, disk: TensorCache | None) -> torch.Tensor:
    """Latent tokens [B, S, C] of ``images`` [B, 3, H, W] in [-1, 1]: each read from ``disk`` under its key where
    present, the rest encoded together and written there (``disk`` None: all encoded). A streamed run's way to use
    the cache one batch at a time."""
    hits = [disk.get(key) if disk is not None else None for key in keys]
    missing = [i for i, hit in enumerate(hits) if hit is None]
    tokens = [hit["tokens"] if hit is not None else None for hit in hits]
    if missing:
        for i, t in zip(missing, rep.encode(images[missing])):
            tokens[i] = t
            if disk is not None:
                disk.put(keys[i], {"tokens": t})
    return torch.stack(tokens)
