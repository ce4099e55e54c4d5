"""The pipeline's ``id_images`` argument: PIL images, file paths, arrays or tensors, one or several people per prompt.

diffusers' ``VaeImageProcessor`` does the resizing and the [0, 1] -> [-1, 1] scaling, as it does for every diffusers
pipeline's image inputs; this module only turns the nesting (one prompt or a batch, one person or several) into one
crop tensor per prompt, and names the bad item when something is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers.image_processor import VaeImageProcessor

from idglow.data.images import read_rgb

IdImage = PIL.Image.Image | str | Path | np.ndarray | torch.Tensor


def _is_item(value) -> bool:
    """One image (not a list of them): a PIL image, a path, an HxWx3 array or a [3, h, w] tensor."""
    if isinstance(value, (PIL.Image.Image, str, Path)):
        return True
    return isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 3


def _as_pil(item, where: str) -> PIL.Image.Image:
    if isinstance(item, PIL.Image.Image):
        return item.convert("RGB")
    if isinstance(item, (str, Path)):
        if not Path(item).is_file():
            raise FileNotFoundError(f"{where}: {item} does not exist")
        return PIL.Image.fromarray(read_rgb(Path(item), where))
    if isinstance(item, torch.Tensor):
        item = item.detach().float().cpu()
        if item.shape[0] != 3:
            raise ValueError(f"{where}: expected a [3, h, w] tensor in [0, 1], got shape {tuple(item.shape)}")
        item = item.permute(1, 2, 0).numpy()
    if isinstance(item, np.ndarray):
        if item.ndim != 3 or item.shape[-1] != 3:
            raise ValueError(f"{where}: expected an HxWx3 array, got shape {item.shape}")
        if item.dtype != np.uint8:
            if item.min() < 0 or item.max() > 1:
                raise ValueError(f"{where}: a float image must lie in [0, 1] (diffusers' convention), got "
                                 f"[{item.min():.3g}, {item.max():.3g}]")
            item = (item * 255).round().astype(np.uint8)
        return PIL.Image.fromarray(item)
    raise TypeError(f"{where}: expected a PIL image, a path, an HxWx3 array or a [3, h, w] tensor, got {type(item).__name__}")


def _people(entry, where: str) -> list:
    """One prompt's references as a list of single images."""
    if _is_item(entry):
        return [entry]
    if isinstance(entry, (np.ndarray, torch.Tensor)) and entry.ndim == 4:
        return list(entry)
    if isinstance(entry, Sequence) and not isinstance(entry, str):
        return list(entry)
    raise TypeError(f"{where}: expected an image or a list of images, got {type(entry).__name__}")


def reference_sets(id_images, batch: int, size: int, max_refs: int) -> list[torch.Tensor]:
    """``id_images`` -> B crop tensors [N_b, 3, size, size] in [-1, 1], one per prompt.

    For one prompt, ``id_images`` is an image or a list of people (each an image); for B prompts, a list of B such
    entries (a flat list of images is accepted for B = 1 only). Tensors are [3, h, w] (or [N, 3, h, w] for N
    people) in [0, 1] and arrays HxWx3 (uint8, or float in [0, 1]), as in diffusers.

    Raises:
        ValueError / TypeError naming ``id_images[b][n]``: a wrong count, an empty set, more people than the model
        takes (``max_refs``), an unreadable file or a malformed image.
    """
    if batch == 1 and (_is_item(id_images) or (isinstance(id_images, Sequence) and id_images and all(map(_is_item, id_images)))):
        id_images = [id_images]
    if isinstance(id_images, (np.ndarray, torch.Tensor)) and id_images.ndim == 5:
        id_images = list(id_images)
    if not isinstance(id_images, Sequence) or isinstance(id_images, str) or len(id_images) != batch:
        count = len(id_images) if isinstance(id_images, Sequence) and not isinstance(id_images, str) else "not a list"
        raise ValueError(f"id_images: expected one entry (an image or a list of people) per prompt: {batch} prompt(s), "
                         f"got {count}")
    processor = VaeImageProcessor(vae_scale_factor=1, resample="bicubic", do_normalize=True)
    sets = []
    for b, entry in enumerate(id_images):
        people = _people(entry, f"id_images[{b}]")
        if not people:
            raise ValueError(f"id_images[{b}]: no images; give id_images=None to run the base model")
        if len(people) > max_refs:
            raise ValueError(f"id_images[{b}]: {len(people)} people; the model takes at most {max_refs}")
        images = [_as_pil(item, f"id_images[{b}][{n}]") for n, item in enumerate(people)]
        sets.append(processor.preprocess(images, height=size, width=size).float())
    return sets


def init_image(image, batch: int, height: int, width: int) -> torch.Tensor:
    """The image-to-image start: one image (for every prompt) or B images -> [B, 3, height, width] in [-1, 1]."""
    images = [image] * batch if _is_item(image) else _people(image, "image")
    if len(images) != batch:
        raise ValueError(f"image: {len(images)} images for {batch} prompt(s)")
    pils = [_as_pil(item, f"image[{b}]") for b, item in enumerate(images)]
    return VaeImageProcessor(vae_scale_factor=1, resample="bicubic").preprocess(pils, height=height, width=width).float()
