"""SFT scenes read at each batch instead of held in memory (``data.stream: true``), for sets larger than RAM.

Webdataset shards are indexed once (:class:`~idglow.data.shards.ShardIndex`: where each sample lies, 20 bytes a
sample) and each batch reads its samples with one seek each; JSONL manifests keep their validated records and read
the image files of each batch. Batches are chosen by the same :class:`~idglow.data.images.EpochOrder` as the
in-memory path, so a streamed run sees the very batches an in-memory run sees, and resumes from the same
``(epoch, cursor)`` position in its checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from idglow.data.images import RecordFiles, SameSize
from idglow.data.manifest import TASKS, ManifestError, load_manifest
from idglow.data.shards import ShardIndex, is_shards


class SceneSource:
    """Records of SFT manifests and shard sets by position: ``source[i] -> (RecordFiles, record)``, read on demand."""

    def __init__(self, manifests: list[str | Path]):
        if not manifests:
            raise ValueError("data.manifests: no manifest given")
        self.parts = [ShardIndex(m) if is_shards(m) else (Path(m), load_manifest(m, "sft")) for m in manifests]
        self.offsets = np.cumsum([0] + [len(p) if isinstance(p, ShardIndex) else len(p[1]) for p in self.parts])
        if self.offsets[-1] == 0:
            raise ManifestError(f"{', '.join(map(str, manifests))}: no records (an empty manifest)")

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i: int) -> tuple[RecordFiles, dict]:
        number = int(np.searchsorted(self.offsets, i, side="right")) - 1
        part, j = self.parts[number], i - int(self.offsets[number])
        if isinstance(part, ShardIndex):
            label, record, members = part.read(j)
            return RecordFiles(label, members=members), record
        manifest, records = part
        return RecordFiles(str(manifest), folder=manifest.parent), records[j]


class StreamingScenes:
    """SFT scenes with their subjects, read per batch: the interface of the in-memory
    :class:`~idglow.data.subjects.SubjectScenes` that training uses (``len``, ``size``, ``batch``,
    ``scene_batch``, ``cache_keys``), holding no image.

    Every image must have the size of the first scene's, every reference crop that of its first reference; a
    record with more subjects than ``max_refs`` is refused when read. Errors name file (or shard#key), line and field.
    """

    def __init__(self, manifests: list[str | Path], max_refs: int | None = None):
        self.source, self.max_refs = SceneSource(manifests), max_refs
        files, record = self._record(0)
        self._images, self._refs = SameSize(), SameSize()
        self._images.append(self._image(files, record))  # the first image and crop: the sizes every other must have
        if record["subjects"]:
            self._refs.append(self._crop(files, record, 0))

    def __len__(self) -> int:
        return len(self.source)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of every image."""
        return tuple(self._images[0].shape[:2])

    def _record(self, i: int) -> tuple[RecordFiles, dict]:
        files, record = self.source[i]
        if self.max_refs is not None and len(record["subjects"]) > self.max_refs:
            raise ManifestError(f"{files.label}:{record['_line']}: subjects: {len(record['subjects'])} subjects exceed "
                                f"the model's max_refs={self.max_refs}")
        return files, record

    def _image(self, files: RecordFiles, record: dict) -> np.ndarray:
        return files.read(record["image"], f"{files.label}:{record['_line']}: image", self._images, "image")

    def _crop(self, files: RecordFiles, record: dict, k: int) -> np.ndarray:
        where = f"{files.label}:{record['_line']}: subjects[{k}].ref"
        return files.read(record["subjects"][k]["ref"], where, self._refs, "reference")

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """Images [B, 3, H, W] in [-1, 1] and the prompts of scenes ``index`` [B]."""
        scenes = [self._record(i) for i in index.tolist()]
        return _to_unit(np.stack([self._image(f, r) for f, r in scenes])), [r["prompt"] for _, r in scenes]

    def scene_batch(self, index: torch.Tensor) -> dict:
        """Everything SFT needs of scenes ``index`` [B]: ``images`` [B, 3, H, W] and ``crops`` [M, 3, h, w] in
        [-1, 1], ``prompts``, ``tasks`` [B], the subjects' ``boxes`` [M, 4], owning ``rows`` [M] and ``slots`` [M],
        ``sources`` (file:line: field of each crop, for errors) and the images' ``identities`` (what their latent
        cache keys depend on, so the batch is not read twice)."""
        scenes = [self._record(i) for i in index.tolist()]
        crops, boxes, rows, slots, sources = [], [], [], [], []
        for row, (files, record) in enumerate(scenes):
            for k, subject in enumerate(record["subjects"]):
                crops.append(self._crop(files, record, k))
                boxes.append(subject["box"])
                rows.append(row)
                slots.append(k)
                sources.append(f"{files.label}:{record['_line']}: subjects[{k}].ref")
        return {"images": _to_unit(np.stack([self._image(f, r) for f, r in scenes])),
                "prompts": [r["prompt"] for _, r in scenes],
                "tasks": torch.tensor([TASKS.index(r["task"]) for _, r in scenes]),
                "crops": _to_unit(np.stack(crops)) if crops else torch.zeros(0, 3, 1, 1),
                "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                "rows": torch.tensor(rows, dtype=torch.long), "slots": torch.tensor(slots, dtype=torch.long),
                "sources": sources, "identities": [files.identity(r["image"]) for files, r in scenes]}

    def cache_keys(self, prefix: str, index: torch.Tensor) -> list[str]:
        """The disk-cache key of each image of scenes ``index``: ``prefix`` (the encoder) and the file's identity."""
        return [f"{prefix}|{files.identity(record['image'])}" for files, record in map(self._record, index.tolist())]


def _to_unit(arrays: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float [N, 3, H, W] in [-1, 1], the in-memory path's arithmetic."""
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
