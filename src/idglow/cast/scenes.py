"""Scenes of the synthetic cast: group photos, reference portraits and their captions."""

from __future__ import annotations

import dataclasses

import numpy as np

from idglow.cast.factors import (
    BACKGROUND_NAMES,
    CLOTHING_NAMES,
    Identity,
    Lighting,
    sample_appearance,
    sample_identity,
    sample_lighting,
)
from idglow.cast.render import Person, Placement, render_scene

MAX_PEOPLE = 4
POSITIONS = {
    1: ("in the centre",),
    2: ("on the left", "on the right"),
    3: ("on the left", "in the middle", "on the right"),
    4: ("on the far left", "second from the left", "second from the right", "on the far right"),
}
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
PLACES = {"park": "in a park", "beach": "on a beach", "room": "in a living room", "studio": "in a studio", "city": "on a city street"}
SCALE_BY_COUNT = {1: 1.0, 2: 1.0, 3: 0.95, 4: 0.85}


@dataclasses.dataclass(frozen=True)
class Scene:
    """A rendered scene and its ground truth (people left to right)."""

    image: np.ndarray  # uint8 [H, W, 3]
    boxes: list[list[float]]  # face boxes [x0, y0, x1, y1] in pixels, left to right
    people: list[Person]
    background: str
    lighting: Lighting
    caption: str


def caption(people: list[Person], background: str) -> str:
    """Ground-truth caption naming every person's position and clothing colour."""
    n = len(people)
    noun = "child" if people[0].appearance.age == "child" else "person"
    place = PLACES[background]
    if n == 1:
        return f"a photo of one {noun} wearing {people[0].appearance.clothing} {place}"
    plural = "children" if noun == "child" else "people"
    parts = [f"the {noun} {pos} wears {p.appearance.clothing}" for pos, p in zip(POSITIONS[n], people)]
    return f"a group photo of {NUMBERS[n]} {plural} {place}: " + ", ".join(parts)


def sample_group(
    rng: np.random.Generator,
    identities: list[Identity],
    age: str,
    width: int,
    height: int,
    face_age: str | None = None,
) -> Scene:
    """A group photo of ``identities`` (left to right) at ``age``, random scene factors.

    ``face_age="adult"`` with ``age="child"`` renders mini-adults (adult faces on child bodies).
    """
    n = len(identities)
    if not 1 <= n <= MAX_PEOPLE:
        raise ValueError(f"people: a group has 1 to {MAX_PEOPLE} people, got {n}")
    colours = rng.permutation(len(CLOTHING_NAMES))[:n]
    scale = SCALE_BY_COUNT[n]
    if n == 1:
        xs = [rng.uniform(0.3, 0.7)]
    else:
        xs = [(i + 0.5) / n + rng.uniform(-0.12, 0.12) / n for i in range(n)]
    people = [
        Person(
            identity,
            sample_appearance(rng, age, CLOTHING_NAMES[c], face_age),
            Placement(x=float(x), dy=float(rng.uniform(-0.04, 0.04)), scale=scale * float(rng.uniform(0.95, 1.05))),
        )
        for identity, c, x in zip(identities, colours, xs)
    ]
    background = BACKGROUND_NAMES[int(rng.integers(len(BACKGROUND_NAMES)))]
    lighting = sample_lighting(rng)
    jitter = tuple(float(v) for v in rng.uniform(-12, 12, size=3))
    image, boxes = render_scene(people, width, height, background, lighting, jitter)
    return Scene(image, boxes, people, background, lighting, caption(people, background))


def sample_portrait(rng: np.random.Generator, identity: Identity, size: int = 64, age: str = "adult") -> Scene:
    """A single-person close-up of ``identity`` (the source of reference crops)."""
    app = sample_appearance(rng, age, CLOTHING_NAMES[int(rng.integers(len(CLOTHING_NAMES)))])
    person = Person(identity, app, Placement(x=float(rng.uniform(0.42, 0.58)), dy=0.05, scale=1.35))
    background = BACKGROUND_NAMES[int(rng.integers(len(BACKGROUND_NAMES)))]
    lighting = sample_lighting(rng)
    jitter = tuple(float(v) for v in rng.uniform(-12, 12, size=3))
    image, boxes = render_scene([person], size, size, background, lighting, jitter)
    return Scene(image, boxes, [person], background, lighting, caption([person], background))


def identities(world_seed: int, ids) -> list[Identity]:
    """The identities with these ids in world ``world_seed``."""
    return [sample_identity(world_seed, int(i)) for i in ids]
