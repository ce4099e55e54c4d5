"""A disk cache of tensors: one safetensors file per key, written atomically, shared by runs and processes.

Prompt embeddings and image latents are cached this way (``data.cache_dir``): computed once per manifest
(``idglow cache build``, or lazily by the first run) and reused by every later run with the same encoder.
Keys name everything the value depends on (the encoder, the prompt; the VAE, the image file's path, size
and modification time), so a changed input is a new key, never a stale hit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from idglow.utils.io import atomic_write


class TensorCache:
    """Tensors by string key under ``folder/namespace``.

    Args:
        folder: the cache folder (created on first write).
        namespace: a sub-folder per kind of value and encoder (e.g. ``text``, ``latents``).
    """

    def __init__(self, folder: str | Path, namespace: str):
        self.root = Path(folder) / namespace
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.safetensors"

    def get(self, key: str) -> dict[str, torch.Tensor] | None:
        """The tensors stored under ``key``, or None (a torn or unreadable file counts as missing)."""
        path = self._path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            value = load_file(path)
        except (SafetensorError, OSError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        """Store ``tensors`` under ``key`` (contiguous CPU copies; atomic rename)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        atomic_write(path, lambda tmp: save_file(data, str(tmp), metadata={"key": key[:512]}))
