"""Image-caption sets read from SFT manifests (JSONL or webdataset shards), decoded once into memory."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from idglow.data.manifest import ManifestError, load_manifest

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")  # what folders of user images are searched for


MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # decoded-size limit (Pillow's, 89.5 M pixels): larger files are refused unread


def read_rgb(path: Path | io.BytesIO, where: str, name: str | None = None) -> np.ndarray:
    """uint8 [H, W, 3] of the image at ``path`` (or in a buffer called ``name``); ManifestError prefixed by
    ``where`` (file:line: field) if unreadable or larger than :data:`MAX_PIXELS`. Palette, greyscale, CMYK and
    alpha images are converted to RGB; 16-bit greyscale is scaled to 8 bits (not clipped to white)."""
    label = name or getattr(path, "name", "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, with the file named
            im = Image.open(path)
        with im:
            width, height = im.size
            if width * height > MAX_PIXELS:
                raise ManifestError(f"{where}: image {label!r} is {width}x{height} pixels, over the limit of "
                                    f"{MAX_PIXELS:,} pixels")
            return _to_rgb(im)
    except Image.DecompressionBombError as err:
        raise ManifestError(f"{where}: image {label!r} is over the limit of {MAX_PIXELS:,} pixels ({err})") from None
    except (OSError, UnidentifiedImageError, ValueError) as err:
        if isinstance(err, ManifestError):
            raise
        raise ManifestError(f"{where}: unreadable image {label!r} ({err})") from None


def _to_rgb(im: Image.Image) -> np.ndarray:
    """uint8 [H, W, 3]: 16-bit (and 32-bit integer) greyscale scaled by 1/257, every other mode through Pillow."""
    if im.mode.startswith("I"):
        grey = np.clip(np.asarray(im, dtype=np.float64) / 257.0, 0, 255).round().astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.array(im.convert("RGB"))


class SameSize(list):
    """Decoded images that must share one size (one batch); remembers where the first came from, for errors."""

    first: str | None = None


def read_same_size(path: Path | io.BytesIO, where: str, earlier: list[np.ndarray], what: str,
                   name: str | None = None) -> np.ndarray:
    """:func:`read_rgb`, checking the size against the first of ``earlier`` (a batch needs one size); with a
    :class:`SameSize` list the error names both images, so a lone odd first image is not blamed on the next."""
    array = read_rgb(path, where, name)
    if earlier and array.shape != earlier[0].shape:
        first = f" ({earlier.first})" if getattr(earlier, "first", None) else ""
        raise ManifestError(f"{where}: size {array.shape[1]}x{array.shape[0]} differs from the first {what}'s "
                            f"{earlier[0].shape[1]}x{earlier[0].shape[0]}{first}; every {what} must have one size")
    if not earlier and isinstance(earlier, SameSize):
        earlier.first = where
    return array


class RecordFiles:
    """Where a record's files live: next to its JSONL manifest, or as members of its webdataset sample."""

    def __init__(self, label: str, folder: Path | None = None, members: dict[str, bytes] | None = None):
        self.label, self.folder, self.members = label, folder, members

    def read(self, name: str, where: str, earlier: list[np.ndarray], what: str) -> np.ndarray:
        """The image ``name`` of this record as uint8 [H, W, 3], the same size as ``earlier[0]``."""
        if self.members is not None:
            return read_same_size(io.BytesIO(self.members[name]), where, earlier, what, name)
        return read_same_size(self.folder / name, where, earlier, what)

    def identity(self, name: str) -> str:
        """What a cached value computed from file ``name`` depends on: path, size and mtime (or the bytes' hash)."""
        if self.members is not None:
            return f"{self.label}/{name}|{hashlib.sha256(self.members[name]).hexdigest()}"
        path = (self.folder / name).resolve()
        stat = path.stat()
        return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def scene_records(manifests: list[str | Path]) -> list[tuple[RecordFiles, dict]]:
    """``(files, record)`` of every SFT record of ``manifests`` (JSONL files or webdataset shard sets)."""
    from idglow.data.shards import is_shards, read_shard_records

    out = []
    for manifest in manifests:
        if is_shards(manifest):
            out += [(RecordFiles(label, members=members), record) for label, _, record, members in read_shard_records(manifest)]
        else:
            out += [(RecordFiles(str(manifest), folder=Path(manifest).parent), r) for r in load_manifest(manifest, "sft")]
    return out


def first_image_size(manifests: list[str | Path]) -> tuple[int, int] | None:
    """``(height, width)`` of the first image of ``manifests`` (JSONL or shards), for a check that warns; None where
    it cannot be read here (an exported model's training data is usually on another machine)."""
    from idglow.data.shards import is_shards, read_shard_records

    try:
        manifest = manifests[0]
        if is_shards(manifest):
            label, _, record, members = next(read_shard_records(manifest))
            return RecordFiles(label, members=members).read(record["image"], label, [], "image").shape[:2]
        with open(manifest, encoding="utf-8") as lines:
            record = json.loads(next(line for line in lines if line.strip()))
        return read_rgb(Path(manifest).parent / record["image"], f"{manifest}:1: image").shape[:2]
    except (IndexError, StopIteration, OSError, ValueError, KeyError, TypeError):
        return None


def warn_if_trained_at_another_size(trained_on: list[str | Path], height: int, width: int, what: str) -> None:
    """Warn where ``what`` is sampled at ``height`` x ``width`` but the model trained on images of another size:
    legal for a FLUX backbone (positions are rotary), but its numbers then measure a size it never saw."""
    size = first_image_size(trained_on)
    if size is not None and tuple(size) != (height, width):
        warnings.warn(f"{what}: sampled at {width}x{height}, the size of its images, but the model trained on "
                      f"{size[1]}x{size[0]} images ({trained_on[0]}); its scores measure a size it never saw",
                      stacklevel=2)


class CaptionedImages:
    """All images [N, 3, H, W] (uint8, in memory) and prompts of one or more SFT manifests.

    Raises:
        ManifestError: a malformed record, an unreadable image or one of another size, naming file,
            line and field.
    """

    def __init__(self, manifests: list[str | Path], progress: bool = True):
        if not manifests:
            raise ValueError("data.manifests: no manifest given")
        arrays, self.prompts, self.sources = SameSize(), [], []
        self.records = scene_records(manifests)
        if not self.records:
            raise ManifestError(f"{', '.join(map(str, manifests))}: no records (an empty manifest)")
        for files, record in tqdm(self.records, desc="loading images", disable=not progress):
            where = f"{files.label}:{record['_line']}: image"
            arrays.append(files.read(record["image"], where, arrays, "image"))
            self.prompts.append(record["prompt"])
            self.sources.append(where)
        self.images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    def __len__(self) -> int:
        return len(self.prompts)

    def cache_keys(self, prefix: str) -> list[str]:
        """One disk-cache key per image: ``prefix`` (the encoder) and the image file's identity."""
        return [f"{prefix}|{files.identity(record['image'])}" for files, record in self.records]

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of every image."""
        return tuple(self.images.shape[-2:])

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """Images [B, 3, H, W] in [-1, 1] and their prompts."""
        return self.images[index].float().div(127.5).sub(1.0), [self.prompts[i] for i in index.tolist()]


class EpochOrder:
    """A reproducible, resumable order over N items: a fresh permutation per epoch from ``(seed, epoch)``.

    The position ``(epoch, cursor)`` is all that a checkpoint needs to continue the exact same order.
    Each of ``world_size`` processes takes its own slice of every global batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if n < batch_size * world_size:
            raise ValueError(f"data: {n} images are fewer than one global batch of {batch_size * world_size}")
        self.n, self.batch_size, self.seed, self.rank, self.world_size = n, batch_size, seed, rank, world_size
        self.epoch, self.cursor = 0, 0

    def _perm(self) -> torch.Tensor:
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))

    def next(self) -> torch.Tensor:
        """Indices of this process's next batch [batch_size]; epochs drop their incomplete last batch."""
        global_batch = self.batch_size * self.world_size
        if self.cursor + global_batch > self.n:
            self.epoch, self.cursor = self.epoch + 1, 0
        start = self.cursor + self.rank * self.batch_size
        self.cursor += global_batch
        return self._perm()[start : start + self.batch_size]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
