"""Factors of the synthetic cast: who a person is (identity), how old, and the scene around them.

An identity is a vector of factors that survive age and scene changes. It is a pure function of
``(world_seed, identity_id)``, so identity k is the same person in every dataset built from the
same world seed, and train/held-out splits are disjoint ranges of ids.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SKIN_TONES = np.array(
    [(255, 224, 196), (241, 194, 165), (224, 172, 135), (198, 143, 103), (161, 110, 75), (120, 80, 55), (88, 57, 40)],
    dtype=np.float32,
)
EYE_COLOURS = np.array([(70, 45, 25), (110, 70, 35), (60, 110, 190), (70, 140, 80), (120, 130, 140), (150, 110, 50)], dtype=np.float32)
HAIR_COLOURS = np.array(
    [(25, 20, 18), (70, 45, 30), (120, 80, 45), (160, 70, 35), (215, 180, 110), (190, 60, 30), (150, 150, 150), (235, 225, 200)],
    dtype=np.float32,
)
HAIR_STYLES = ("short", "long", "bun", "curly", "bald")

# Clothing colours are named in captions; the names are what the colour judge predicts.
CLOTHING = {
    "red": (205, 40, 40),
    "blue": (40, 80, 205),
    "green": (40, 160, 60),
    "yellow": (235, 205, 40),
    "purple": (130, 50, 170),
    "orange": (240, 130, 30),
    "white": (235, 235, 235),
    "black": (30, 30, 35),
}
CLOTHING_NAMES = tuple(CLOTHING)

BACKGROUNDS = {
    "park": ((120, 180, 235), (80, 150, 70)),
    "beach": ((150, 200, 240), (225, 205, 150)),
    "room": ((205, 190, 170), (150, 120, 95)),
    "studio": ((90, 95, 110), (60, 62, 75)),
    "city": ((175, 180, 190), (110, 110, 118)),
}
BACKGROUND_NAMES = tuple(BACKGROUNDS)
EXPRESSIONS = ("neutral", "smile", "open")
AGES = ("adult", "child")


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a person is: factors that survive age, pose, lighting and clothing changes."""

    id: int
    skin: int
    eye_colour: int
    hair_colour: int
    hair_style: int
    face_aspect: float  # adult face width / height
    jaw: float  # 0 = round chin, 1 = pointed
    eye_shape: float  # eye height / width
    eye_spacing: float  # half-distance between eyes, in face widths
    eye_size: float  # eye width, in face widths
    brow_angle: float  # degrees, + = raised outer ends
    brow_thickness: float
    nose_length: float  # in face heights
    nose_width: float  # in face widths
    mouth_width: float  # in face widths
    lip: float  # lip thickness
    mole: tuple[float, float] | None  # position in face coordinates [-1, 1]
    freckles: bool


def sample_identity(world_seed: int, identity_id: int) -> Identity:
    """The identity ``identity_id`` of world ``world_seed`` (deterministic)."""
    rng = np.random.default_rng([world_seed, identity_id, 17])
    has_mole = rng.random() < 0.45
    mole = (float(rng.uniform(-0.55, 0.55)), float(rng.uniform(-0.1, 0.6))) if has_mole else None
    return Identity(
        id=identity_id,
        skin=int(rng.integers(len(SKIN_TONES))),
        eye_colour=int(rng.integers(len(EYE_COLOURS))),
        hair_colour=int(rng.integers(len(HAIR_COLOURS))),
        hair_style=int(rng.integers(len(HAIR_STYLES))),
        face_aspect=float(rng.uniform(0.68, 0.9)),
        jaw=float(rng.uniform(0.0, 1.0)),
        eye_shape=float(rng.uniform(0.35, 0.8)),
        eye_spacing=float(rng.uniform(0.17, 0.25)),
        eye_size=float(rng.uniform(0.16, 0.24)),
        brow_angle=float(rng.uniform(-18, 18)),
        brow_thickness=float(rng.uniform(0.03, 0.08)),
        nose_length=float(rng.uniform(0.14, 0.26)),
        nose_width=float(rng.uniform(0.1, 0.22)),
        mouth_width=float(rng.uniform(0.28, 0.5)),
        lip=float(rng.uniform(0.03, 0.08)),
        mole=mole,
        freckles=bool(rng.random() < 0.3),
    )


@dataclasses.dataclass(frozen=True)
class Appearance:
    """How one person appears in one render: age, face structure source, pose, expression, clothes."""

    age: str = "adult"  # adult | child: body proportions (and face structure unless face_age says otherwise)
    face_age: str | None = None  # facial structure; None = same as age. ("adult" on a child = a mini-adult)
    clothing: str = "blue"
    roll: float = 0.0  # head tilt, degrees
    yaw: float = 0.0  # head turn in [-1, 1]: inner features shift sideways
    expression: str = "neutral"

    @property
    def structure_age(self) -> str:
        return self.face_age or self.age


def sample_appearance(rng: np.random.Generator, age: str, clothing: str, face_age: str | None = None) -> Appearance:
    """A random pose and expression for a person of ``age`` wearing ``clothing``."""
    return Appearance(
        age=age,
        face_age=face_age,
        clothing=clothing,
        roll=float(rng.uniform(-12, 12)),
        yaw=float(rng.uniform(-0.35, 0.35)),
        expression=EXPRESSIONS[int(rng.integers(len(EXPRESSIONS)))],
    )


@dataclasses.dataclass(frozen=True)
class Lighting:
    """Global illumination of a render: brightness, warm/cool tint and a left-right gradient."""

    brightness: float = 1.0
    warmth: float = 0.0  # -1 cool .. 1 warm
    gradient: float = 0.0  # -1 lit from the right .. 1 lit from the left


def sample_lighting(rng: np.random.Generator) -> Lighting:
    return Lighting(float(rng.uniform(0.8, 1.15)), float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)))
