"""``idglow synth preview``: a contact sheet of the cast, to look at before training on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from idglow.cast.config import WorldConfig
from idglow.cast.scenes import identities, sample_group, sample_portrait

ROWS = (
    "identities (adult portraits)",
    "the same identities as children",
    "group photos, task group",
    "the same groups as children, task age",
    "mini-adults: adult faces on child bodies",
)


def contact_sheet(world: WorldConfig, seed: int = 0, columns: int = 4, scale: int = 3) -> Image.Image:
    """Rows of ROWS for held-out identities; group column c has ``1 + c % world.max_people`` people."""
    rng = np.random.default_rng(seed)
    ids = world.ids("heldout")
    people = identities(world.seed, ids[: 2 * columns])
    portraits = [np.concatenate([sample_portrait(rng, p, age=age).image for p in people[:2 * columns:2]], axis=1)
                 for age in ("adult", "child")]
    groups, children, minis = [], [], []
    for c in range(columns):
        members = identities(world.seed, ids[2 * columns + 4 * c : 2 * columns + 4 * c + 1 + c % world.max_people])
        state = int(rng.integers(1 << 31))
        groups.append(sample_group(np.random.default_rng(state), members, "adult", world.width, world.height).image)
        children.append(sample_group(np.random.default_rng(state), members, "child", world.width, world.height).image)
        minis.append(sample_group(np.random.default_rng(state), members, "child", world.width, world.height, "adult").image)
    rows = [np.concatenate(r, axis=1) for r in (groups, children, minis)]
    width = max(r.shape[1] for r in [*portraits, *rows])
    pad = lambda r: np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255)  # noqa: E731
    label_h = 12
    blocks = []
    for title, row in zip(ROWS, [*portraits, *rows]):
        label = Image.new("RGB", (width * scale, label_h * scale // 2 * 2), "white")
        ImageDraw.Draw(label).text((4, 2), title, fill=(0, 0, 0))
        blocks.append(np.asarray(label))
        blocks.append(np.asarray(Image.fromarray(pad(row)).resize((width * scale, row.shape[0] * scale), Image.Resampling.NEAREST)))
    return Image.fromarray(np.concatenate(blocks, axis=0))


def write_preview(path: str | Path, world: WorldConfig, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(world, seed).save(path)
    return path
