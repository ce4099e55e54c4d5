"""In-memory pools of rendered cast scenes with per-face ground truth, for training and testing judges."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from idglow.cast.crops import face_crops
from idglow.cast.factors import CLOTHING_NAMES
from idglow.cast.judges import torso_boxes
from idglow.cast.scenes import MAX_PEOPLE, identities, sample_group


@dataclasses.dataclass
class ScenePool:
    """S scenes and F faces.

    Attributes:
        images: uint8 [S, H, W, 3].
        scene: [F] scene index of each face; boxes: [F, 4] face boxes in pixels.
        identity: [F] identity ids; child_face: [F] 1 if the face has child structure;
        child_body: [F] 1 if the body is a child's (mini-adults: child body, adult face);
        colour: [F] clothing colour index into ``CLOTHING_NAMES``.
    """

    images: torch.Tensor
    scene: torch.Tensor
    boxes: torch.Tensor
    identity: torch.Tensor
    child_face: torch.Tensor
    child_body: torch.Tensor
    colour: torch.Tensor

    def image_batch(self, index: torch.Tensor) -> torch.Tensor:
        """Scenes ``index`` as float [B, 3, H, W] in [-1, 1]."""
        return self.images[index].permute(0, 3, 1, 2).float().div(127.5).sub(1.0)

    def crops(self, faces: torch.Tensor | None = None, size: int = 32, torso: bool = False, chunk: int = 512) -> torch.Tensor:
        """Face (or torso) crops [F', 3, size, size] of ``faces`` (default: all), from the ground-truth boxes."""
        faces = torch.arange(len(self.scene)) if faces is None else faces
        out = []
        for start in range(0, len(faces), chunk):
            f = faces[start : start + chunk]
            scenes, inverse = torch.unique(self.scene[f], return_inverse=True)
            boxes = torso_boxes(self.boxes[f]) if torso else self.boxes[f]
            out.append(face_crops(self.image_batch(scenes), boxes, inverse, size=size, expand=1.0 if torso else 1.3))
        return torch.cat(out) if out else torch.zeros(0, 3, size, size)


def _render_chunk(args) -> dict:
    world_seed, ids, count, seed, width, height, mini_adult_fraction, max_people = args
    rng = np.random.default_rng(seed)
    images, rows = [], []
    for s in range(count):
        n = int(rng.integers(1, max_people + 1))
        chosen = rng.choice(ids, size=n, replace=False)
        age = "child" if rng.random() < 0.5 else "adult"
        face_age = "adult" if age == "child" and rng.random() < mini_adult_fraction else None
        scene = sample_group(rng, identities(world_seed, chosen), age, width, height, face_age)
        images.append(scene.image)
        for box, person in zip(scene.boxes, scene.people):
            app = person.appearance
            rows.append((s, *box, person.identity.id, app.structure_age == "child", app.age == "child",
                         CLOTHING_NAMES.index(app.clothing)))
    return {"images": np.stack(images), "rows": np.array(rows, dtype=np.float64).reshape(-1, 9)}


def render_pool(
    world_seed: int,
    ids: np.ndarray,
    num_scenes: int,
    seed: int,
    width: int,
    height: int,
    mini_adult_fraction: float = 0.0,
    workers: int = 2,
    max_people: int = MAX_PEOPLE,
) -> ScenePool:
    """Render ``num_scenes`` random groups (1 to ``max_people`` people, adults or children) of identities ``ids``."""
    if not 1 <= max_people <= MAX_PEOPLE:
        raise ValueError(f"max_people: must be 1 to {MAX_PEOPLE}, got {max_people}")
    if len(ids) < max_people:
        raise ValueError(f"ids: need at least {max_people} identities, got {len(ids)}")
    per = [num_scenes // workers + (1 if w < num_scenes % workers else 0) for w in range(workers)]
    jobs = [(world_seed, np.asarray(ids), n, [seed, w], width, height, mini_adult_fraction, max_people)
            for w, n in enumerate(per) if n]
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            parts = list(ex.map(_render_chunk, jobs))
    else:
        parts = [_render_chunk(j) for j in jobs]
    offset, rows = 0, []
    for part in parts:
        r = part["rows"].copy()
        r[:, 0] += offset
        offset += len(part["images"])
        rows.append(r)
    rows = np.concatenate(rows)
    return ScenePool(
        images=torch.from_numpy(np.concatenate([p["images"] for p in parts])),
        scene=torch.from_numpy(rows[:, 0]).long(),
        boxes=torch.from_numpy(rows[:, 1:5]).float(),
        identity=torch.from_numpy(rows[:, 5]).long(),
        child_face=torch.from_numpy(rows[:, 6]).long(),
        child_body=torch.from_numpy(rows[:, 7]).long(),
        colour=torch.from_numpy(rows[:, 8]).long(),
    )
