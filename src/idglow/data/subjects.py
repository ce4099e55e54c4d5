"""SFT scenes with their subjects: images, prompts, tasks, reference crops and ground-truth face boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from idglow.data.images import CaptionedImages, SameSize
from idglow.data.manifest import TASKS, ManifestError


def scene_subjects(first: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Subjects of scenes ``index`` [B] when scene i owns subjects ``first[i]:first[i+1]``: ``(subject ids [M],
    owning batch row [M], slot [M] = position of the subject within its scene)``."""
    rows, ids, slots = [], [], []
    for row, i in enumerate(index.tolist()):
        start, stop = int(first[i]), int(first[i + 1])
        ids.append(torch.arange(start, stop))
        rows.append(torch.full((stop - start,), row))
        slots.append(torch.arange(stop - start))
    return torch.cat(ids), torch.cat(rows), torch.cat(slots)


class SubjectScenes(CaptionedImages):
    """:class:`CaptionedImages` plus, per scene, its task and subjects (reference crop, face box).

    Every reference crop must have the size of the first one (the cast's are 32x32). Held in memory
    as uint8: ``refs`` [R, 3, h, w] over all subjects of all scenes, ``boxes`` [R, 4],
    ``first`` [N_scenes + 1] (scene i owns subjects ``first[i]:first[i+1]``), ``tasks`` [N_scenes].

    Raises:
        ManifestError: an unreadable or differently sized reference, naming file, line and field.
    """

    def __init__(self, manifests: list[str | Path], progress: bool = True, max_refs: int | None = None):
        super().__init__(manifests, progress)
        crops, boxes, first, self.ref_sources = SameSize(), [], [0], []
        for files, record in self.records:
            if max_refs is not None and len(record["subjects"]) > max_refs:
                raise ManifestError(f"{files.label}:{record['_line']}: subjects: {len(record['subjects'])} subjects exceed "
                                    f"the model's max_refs={max_refs}")
            for i, subject in enumerate(record["subjects"]):
                where = f"{files.label}:{record['_line']}: subjects[{i}].ref"
                crops.append(files.read(subject["ref"], where, crops, "reference"))
                self.ref_sources.append(where)
                boxes.append(subject["box"])
            first.append(len(crops))
        self.refs = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
        self.boxes = torch.tensor(boxes, dtype=torch.float32)
        self.first = torch.tensor(first)
        self.tasks = torch.tensor([TASKS.index(r["task"]) for _, r in self.records])

    def subjects(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Subjects of scenes ``index`` [B], flattened: ``(subject ids [M] into refs/boxes, owning batch row [M],
        slot [M] = position of the subject within its scene)``."""
        return scene_subjects(self.first, index)

    def scene_batch(self, index: torch.Tensor) -> dict:
        """Scenes ``index`` [B] as :meth:`idglow.data.streaming.StreamingScenes.scene_batch` gives them, plus the
        subjects' ``ids`` [M] into ``refs``/``boxes`` (so a trainer can look up what it computed once per subject)."""
        ids, rows, slots = self.subjects(index)
        images, prompts = self.batch(index)
        return {"images": images, "prompts": prompts, "tasks": self.tasks[index], "crops": self.ref_crops(ids),
                "boxes": self.boxes[ids], "rows": rows, "slots": slots,
                "sources": [self.ref_sources[i] for i in ids.tolist()], "ids": ids}

    def ref_crops(self, ids: torch.Tensor) -> torch.Tensor:
        """Reference crops [M, 3, h, w] in [-1, 1] of subjects ``ids``."""
        return self.refs[ids].float().div(127.5).sub(1.0)
