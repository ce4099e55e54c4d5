"""Deterministic, anti-aliased renderer of the synthetic cast (PIL drawing, 4x supersampling).

A scene is a row of people (upper bodies) in front of a background. Age is a *structural*
deformation: a child has a smaller, lower body with a head that is large relative to it, a rounder
face and chin, larger eyes set lower, a smaller nose and mouth. ``Appearance.face_age = "adult"`` on
a child body draws a "mini-adult": the failure the age task's temporal gate exists to prevent.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw

from idglow.cast.factors import (
    BACKGROUNDS,
    CLOTHING,
    EYE_COLOURS,
    HAIR_COLOURS,
    HAIR_STYLES,
    SKIN_TONES,
    Appearance,
    Identity,
    Lighting,
)

SUPERSAMPLE = 4


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a person stands: horizontal centre and a vertical offset, as fractions of the image."""

    x: float
    dy: float = 0.0
    scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class FaceStructure:
    """Face geometry in face-box units (width and height 1 = face width and height)."""

    aspect: float
    jaw: float
    eye_y: float  # eye line, in [-1, 1] face coordinates (-1 = top of the face)
    eye_size: float
    eye_shape: float
    eye_spacing: float
    brow_thickness: float
    nose_length: float
    nose_width: float
    mouth_width: float
    mouth_y: float
    lip: float


def face_structure(identity: Identity, age: str) -> FaceStructure:
    """The identity's face geometry at ``age``: children are rounder, with bigger, lower eyes."""
    if age == "adult":
        return FaceStructure(
            aspect=identity.face_aspect, jaw=identity.jaw, eye_y=-0.08, eye_size=identity.eye_size,
            eye_shape=identity.eye_shape, eye_spacing=identity.eye_spacing, brow_thickness=identity.brow_thickness,
            nose_length=identity.nose_length, nose_width=identity.nose_width, mouth_width=identity.mouth_width,
            mouth_y=0.55, lip=identity.lip,
        )
    if age != "child":
        raise ValueError(f"age: expected 'adult' or 'child', got {age!r}")
    return FaceStructure(
        aspect=0.5 * identity.face_aspect + 0.5 * 0.97, jaw=0.25 * identity.jaw, eye_y=0.14,
        eye_size=identity.eye_size * 1.35, eye_shape=min(identity.eye_shape * 1.25, 1.0),
        eye_spacing=identity.eye_spacing * 1.05, brow_thickness=identity.brow_thickness * 0.7,
        nose_length=identity.nose_length * 0.55, nose_width=identity.nose_width * 0.8,
        mouth_width=identity.mouth_width * 0.75, mouth_y=0.6, lip=identity.lip * 0.8,
    )


def body_geometry(age: str, height: int) -> tuple[float, float, float]:
    """``(face_height, face_centre_y, shoulder_width_in_face_widths)`` in pixels for a body of ``age``."""
    if age == "adult":
        return 0.40 * height, 0.33 * height, 2.3
    return 0.34 * height, 0.52 * height, 1.7


def _shade(colour, factor: float) -> tuple[int, int, int]:
    return tuple(int(max(0, min(255, c * factor))) for c in colour)


def _face_outline(cx: float, cy: float, fw: float, fh: float, jaw: float, n: int = 48) -> list[tuple[float, float]]:
    """Polygon of a face: an ellipse whose lower half narrows toward a chin by ``jaw``."""
    points = []
    for i in range(n):
        t = 2 * math.pi * i / n
        s = math.sin(t)
        x = math.cos(t) * (1 - (0.38 * jaw * s * s if s > 0 else 0.0))
        points.append((cx + 0.5 * fw * x, cy + 0.5 * fh * s))
    return points


def _ellipse(draw: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float, fill) -> None:
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)


def _draw_hair_back(draw, style: str, cx, cy, fw, fh, colour) -> None:
    if style == "long":
        draw.rounded_rectangle((cx - 0.62 * fw, cy - 0.55 * fh, cx + 0.62 * fw, cy + 0.45 * fh), radius=0.3 * fw, fill=colour)
    elif style == "bun":
        _ellipse(draw, cx, cy - 0.62 * fh, 0.24 * fw, 0.2 * fh, colour)
    elif style == "curly":
        for k in range(7):
            a = math.pi * (0.05 + 0.9 * k / 6)
            _ellipse(draw, cx - 0.55 * fw * math.cos(a), cy - 0.42 * fh * math.sin(a) - 0.05 * fh, 0.2 * fw, 0.18 * fh, colour)
    if style != "bald":
        _ellipse(draw, cx, cy - 0.12 * fh, 0.56 * fw, 0.45 * fh, colour)


def _draw_hair_front(draw, style: str, cx, cy, fw, fh, colour) -> None:
    if style == "bald":
        return
    depth = {"short": 0.3, "long": 0.36, "bun": 0.28, "curly": 0.34}[style]
    box = (cx - 0.53 * fw, cy - 0.56 * fh, cx + 0.53 * fw, cy - 0.5 * fh + 2 * depth * fh)
    draw.chord(box, 180, 360, fill=colour)


def _draw_features(draw, identity: Identity, st: FaceStructure, app: Appearance, cx, cy, fw, fh, skin) -> None:
    """Eyes, brows, nose, mouth and marks of one face (face centre cx, cy; size fw x fh)."""
    shift = app.yaw * 0.12 * fw
    ey = cy + 0.5 * fh * st.eye_y
    ew = st.eye_size * fw
    eh = max(st.eye_shape * ew, 0.08 * fw)
    brow = _shade(HAIR_COLOURS[identity.hair_colour], 0.8)
    for side in (-1, 1):
        ex = cx + shift + side * st.eye_spacing * fw * (1 - 0.25 * side * app.yaw)
        _ellipse(draw, ex, ey, ew / 2, eh / 2, (250, 250, 250))
        iris = 0.36 * ew
        _ellipse(draw, ex + 0.3 * shift, ey, iris, min(iris, eh / 2), tuple(int(c) for c in EYE_COLOURS[identity.eye_colour]))
        _ellipse(draw, ex + 0.3 * shift, ey, 0.14 * ew, min(0.14 * ew, eh / 2.5), (15, 12, 10))
        by = ey - eh / 2 - 0.07 * fh - (0.03 * fh if app.expression == "open" else 0.0)
        angle = math.radians(identity.brow_angle) * side
        dx, dy = 0.55 * ew * math.cos(angle), 0.55 * ew * math.sin(angle)
        draw.line((ex - dx, by + dy, ex + dx, by - dy), fill=brow, width=max(1, int(st.brow_thickness * fw)))
    nose_top, nose_bottom = ey + 0.12 * fh, ey + 0.12 * fh + st.nose_length * fh
    nw = st.nose_width * fw
    dark = _shade(skin, 0.72)
    draw.polygon([(cx + shift, nose_top), (cx + shift - nw / 2, nose_bottom), (cx + shift + nw / 2, nose_bottom)], fill=_shade(skin, 0.86))
    draw.line((cx + shift - nw / 2, nose_bottom, cx + shift + nw / 2, nose_bottom), fill=dark, width=max(1, int(0.02 * fw)))
    my = cy + 0.5 * fh * st.mouth_y
    mw = st.mouth_width * fw
    lip = (170, 60, 60)
    thickness = max(st.lip * fh, 0.03 * fh)
    if app.expression == "smile":
        draw.chord((cx + shift - mw / 2, my - 0.5 * thickness - 0.06 * fh, cx + shift + mw / 2, my + 0.08 * fh + thickness), 0, 180, fill=lip)
    elif app.expression == "open":
        _ellipse(draw, cx + shift, my, 0.32 * mw, 0.07 * fh + thickness / 2, (90, 25, 30))
    else:
        _ellipse(draw, cx + shift, my, mw / 2, thickness / 2, lip)
    if identity.mole is not None:
        mx, my_ = identity.mole
        _ellipse(draw, cx + shift + 0.5 * fw * mx, cy + 0.5 * fh * my_, 0.035 * fw, 0.035 * fw, (55, 35, 25))
    if identity.freckles:
        rng = np.random.default_rng(identity.id)
        for _ in range(9):
            side = rng.choice([-1, 1])
            fx = cx + shift + side * fw * rng.uniform(0.12, 0.32)
            fy = ey + fh * rng.uniform(0.08, 0.22)
            _ellipse(draw, fx, fy, 0.018 * fw, 0.018 * fw, _shade(skin, 0.65))


def _draw_person(
    canvas: Image.Image, draw: ImageDraw.ImageDraw, identity: Identity, app: Appearance, place: Placement,
    width: int, height: int, face_mask: ImageDraw.ImageDraw | None,
) -> list[float]:
    """Draw one person onto the supersampled scene; return the face box in output pixels."""
    ss = SUPERSAMPLE
    fh_px, cy_px, shoulders = body_geometry(app.age, height)
    st = face_structure(identity, app.structure_age)
    fh = fh_px * place.scale * ss
    fw = st.aspect * fh
    cx, cy = place.x * width * ss, (cy_px + place.dy * height) * ss
    skin = tuple(int(c) for c in SKIN_TONES[identity.skin])
    hair = tuple(int(c) for c in HAIR_COLOURS[identity.hair_colour])
    cloth = CLOTHING[app.clothing]
    # Body: neck and torso (clothing) down to the bottom edge.
    bw = shoulders * fw
    top = cy + 0.42 * fh
    draw.rectangle((cx - 0.16 * fw, cy + 0.3 * fh, cx + 0.16 * fw, top + 0.2 * fh), fill=_shade(skin, 0.9))
    draw.rounded_rectangle((cx - bw / 2, top + 0.12 * fh, cx + bw / 2, height * ss + fh), radius=0.35 * bw, fill=cloth)
    # Head on its own canvas, rotated by the head roll, then composited.
    size = int(1.9 * fh)
    head = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    hd = ImageDraw.Draw(head)
    hx = hy = size / 2
    style = HAIR_STYLES[identity.hair_style]
    _draw_hair_back(hd, style, hx, hy, fw, fh, hair)
    for side in (-1, 1):
        _ellipse(hd, hx + side * 0.5 * fw, hy + 0.02 * fh, 0.09 * fw, 0.14 * fh, _shade(skin, 0.93))
    outline = _face_outline(hx, hy, fw, fh, st.jaw)
    hd.polygon(outline, fill=skin)
    _draw_features(hd, identity, st, app, hx, hy, fw, fh, skin)
    _draw_hair_front(hd, style, hx, hy, fw, fh, hair)
    # Nearest-neighbour is enough at 4x supersampling: the box downsample anti-aliases.
    head = head.rotate(app.roll, resample=Image.Resampling.NEAREST, center=(hx, hy))
    canvas.alpha_composite(head, (int(round(cx - hx)), int(round(cy - hy))))
    # The face box: the rotated face outline (skin region), in output pixels.
    a = math.radians(-app.roll)  # PIL rotates counter-clockwise for positive angles
    pts = [(cx + (x - hx) * math.cos(a) - (y - hy) * math.sin(a), cy + (x - hx) * math.sin(a) + (y - hy) * math.cos(a)) for x, y in outline]
    if face_mask is not None:
        face_mask.polygon(pts, fill=255)
    xs, ys = [p[0] / ss for p in pts], [p[1] / ss for p in pts]
    return [max(0.0, min(xs)), max(0.0, min(ys)), min(float(width), max(xs)), min(float(height), max(ys))]


def _background(name: str, width: int, height: int, jitter: np.ndarray) -> np.ndarray:
    top, bottom = (np.array(c, dtype=np.float32) for c in BACKGROUNDS[name])
    t = np.linspace(0, 1, height * SUPERSAMPLE, dtype=np.float32)[:, None, None]
    t = np.clip((t - 0.35) / 0.4, 0, 1)
    rows = (1 - t) * top + t * bottom + jitter
    return np.broadcast_to(rows, (height * SUPERSAMPLE, width * SUPERSAMPLE, 3))


def _light(image: np.ndarray, lighting: Lighting) -> np.ndarray:
    w = image.shape[1]
    ramp = 1 + 0.18 * lighting.gradient * np.linspace(1, -1, w, dtype=np.float32)[None, :, None]
    tint = np.array([1 + 0.07 * lighting.warmth, 1.0, 1 - 0.07 * lighting.warmth], dtype=np.float32)
    return np.clip(image * ramp * tint * lighting.brightness, 0, 255)


@dataclasses.dataclass(frozen=True)
class Person:
    """One person of a scene: who, how they appear, where they stand."""

    identity: Identity
    appearance: Appearance
    placement: Placement


def render_scene(
    people: list[Person],
    width: int,
    height: int,
    background: str = "park",
    lighting: Lighting = Lighting(),
    background_jitter: tuple[float, float, float] = (0.0, 0.0, 0.0),
    return_face_mask: bool = False,
):
    """Render people left to right in front of ``background``.

    Returns:
        ``(image uint8 [H, W, 3], boxes list of [x0, y0, x1, y1] face boxes in pixels)``, plus the
        supersampled-then-reduced face mask [H, W] (uint8) when ``return_face_mask``.
    """
    if width < 16 or height < 16:
        raise ValueError(f"size: {width}x{height} is too small to hold a face; need at least 16x16")
    if background not in BACKGROUNDS:
        raise ValueError(f"background: unknown {background!r}; choose one of {tuple(BACKGROUNDS)}")
    base = _background(background, width, height, np.asarray(background_jitter, dtype=np.float32))
    canvas = Image.fromarray(base.astype(np.uint8), "RGB").convert("RGBA")
    draw = ImageDraw.Draw(canvas)
    mask = Image.new("L", canvas.size, 0) if return_face_mask else None
    mask_draw = ImageDraw.Draw(mask) if mask is not None else None
    boxes = []
    for person in people:
        if person.appearance.clothing not in CLOTHING:
            raise ValueError(f"clothing: unknown colour {person.appearance.clothing!r}; choose one of {tuple(CLOTHING)}")
        boxes.append(_draw_person(canvas, draw, person.identity, person.appearance, person.placement, width, height, mask_draw))
    small = canvas.convert("RGB").resize((width, height), Image.Resampling.BOX)
    image = _light(np.asarray(small, dtype=np.float32), lighting).astype(np.uint8)
    if not return_face_mask:
        return image, boxes
    return image, boxes, np.asarray(mask.resize((width, height), Image.Resampling.BOX))
