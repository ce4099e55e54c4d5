"""Preference pairs for DPO: winner and loser images of one prompt and reference set (docs/design.md §7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from idglow.data.images import RecordFiles, SameSize, read_same_size
from idglow.data.manifest import TASKS, ManifestError, load_manifest
from idglow.data.subjects import scene_subjects


class PreferencePairs:
    """Every pair of one or more preference manifests, in memory as uint8.

    ``winners``/``losers`` [P, 3, H, W]; ``refs`` [R, 3, h, w] over all subjects of all pairs with
    ``first`` [P + 1] (pair i owns subjects ``first[i]:first[i+1]``); ``tasks`` [P]; ``weights``,
    ``margins`` [P] (1 and 0 when a record has none).

    Raises:
        ManifestError: a malformed record or an unreadable or differently sized image, naming file, line and field.
    """

    def __init__(self, manifests: list[str | Path], progress: bool = True, max_refs: int | None = None):
        if not manifests:
            raise ValueError("data.manifests: no preference manifest given")
        self.records = [(Path(m), r) for m in manifests for r in load_manifest(m, "preference")]
        if not self.records:
            raise ValueError(f"data.manifests: no pairs in {', '.join(map(str, manifests))}")
        winners, losers, refs, first = SameSize(), [], SameSize(), [0]
        for manifest, record in tqdm(self.records, desc="loading pairs", disable=not progress):
            where = f"{manifest}:{record['_line']}"
            winners.append(read_same_size(manifest.parent / record["winner"], f"{where}: winner", winners, "image"))
            losers.append(read_same_size(manifest.parent / record["loser"], f"{where}: loser", winners, "image"))
            if max_refs is not None and len(record["refs"]) > max_refs:
                raise ManifestError(f"{where}: refs: {len(record['refs'])} references exceed the model's max_refs={max_refs}")
            for i, ref in enumerate(record["refs"]):
                refs.append(read_same_size(manifest.parent / ref, f"{where}: refs[{i}]", refs, "reference"))
            first.append(len(refs))
        self.winners, self.losers = (torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).contiguous() for a in (winners, losers))
        self.refs = torch.from_numpy(np.stack(refs)).permute(0, 3, 1, 2).contiguous()
        self.first = torch.tensor(first)
        self.prompts = [r["prompt"] for _, r in self.records]
        self.tasks = torch.tensor([TASKS.index(r["task"]) for _, r in self.records])
        self.weights = torch.tensor([float(r.get("weight", 1.0)) for _, r in self.records])
        self.margins = torch.tensor([float(r.get("margin", 0.0)) for _, r in self.records])

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of every image."""
        return tuple(self.winners.shape[-2:])

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """Winners and losers [B, 3, H, W] in [-1, 1] and the prompts of pairs ``index``."""
        scale = lambda images: images[index].float().div(127.5).sub(1.0)  # noqa: E731
        return scale(self.winners), scale(self.losers), [self.prompts[i] for i in index.tolist()]

    def subjects(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(subject ids [M], batch row [M], slot [M])`` of pairs ``index`` (see :func:`scene_subjects`)."""
        return scene_subjects(self.first, index)

    def ref_crops(self, ids: torch.Tensor) -> torch.Tensor:
        """Reference crops [M, 3, h, w] in [-1, 1] of subjects ``ids``."""
        return self.refs[ids].float().div(127.5).sub(1.0)


class PairImages:
    """Every winner, then every loser, of :class:`PreferencePairs` as one image set of 2P items: what the latent
    cache (:func:`idglow.conditioning.precompute.encode_latents`) encodes, keyed by each image file."""

    def __init__(self, pairs: PreferencePairs):
        self.pairs = pairs

    def __len__(self) -> int:
        return 2 * len(self.pairs)

    def cache_keys(self, prefix: str) -> list[str]:
        """One disk-cache key per image: ``prefix`` (the encoder) and the file's path, size and mtime."""
        return [f"{prefix}|{RecordFiles(str(m), m.parent).identity(record[side])}"
                for side in ("winner", "loser") for m, record in self.pairs.records]

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Images [B, 3, H, W] in [-1, 1] of items ``index`` (item i < P: winner i; else loser i - P)."""
        p = len(self.pairs)
        images = torch.stack([(self.pairs.winners if i < p else self.pairs.losers)[i % p] for i in index.tolist()])
        return images.float().div(127.5).sub(1.0), None
