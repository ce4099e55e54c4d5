"""Faces in a generated image, each boxed and labelled with the reference it matches (Hungarian matching on the face
backend's similarities, as the benchmarks score) and that similarity."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageDraw

from idglow.eval.facesim import match_similarity
from idglow.faces.base import FaceBackend

COLOURS = ((255, 64, 64), (64, 160, 255), (255, 200, 0), (80, 220, 120), (220, 80, 255), (255, 140, 40))


@dataclasses.dataclass
class FaceLabel:
    """One face found in a generated image: ``box`` (x0, y0, x1, y1) in pixels, the reference it matches (``ref``, its
    ``name``) and their similarity; ``ref`` = -1 for a face no reference was matched to."""

    box: tuple[float, float, float, float]
    ref: int
    name: str
    similarity: float


def label_faces(image: np.ndarray, references: list[np.ndarray], names: list[str], backend: FaceBackend) -> list[FaceLabel]:
    """Every face the backend finds in ``image`` (uint8 [H, W, 3]), matched one-to-one to ``references`` (uint8 crops
    or photos, named by ``names``)."""
    found = backend.faces(image)
    refs = np.stack([backend.reference(r, n) for r, n in zip(references, names)]) if references else np.zeros((0, backend.dim))
    sim = backend.similarity(refs, found.embeddings) if len(found) else np.zeros((len(refs), 0))
    best, index = match_similarity(sim) if len(refs) else (np.zeros(0), np.zeros(0, int))
    owner = {int(f): r for r, f in enumerate(index) if f >= 0}
    return [FaceLabel(tuple(float(v) for v in found.boxes[f]), owner.get(f, -1), names[owner[f]] if f in owner else "unmatched",
                      float(best[owner[f]]) if f in owner else 0.0) for f in range(len(found))]


def reference_rows(labels: list[FaceLabel], names: list[str]) -> list[tuple[str, int | None, float | None]]:
    """Per reference, in order: ``(name, face number from 1 or None when no face was matched to it, similarity)``."""
    faces = {label.ref: (f, label.similarity) for f, label in enumerate(labels) if label.ref >= 0}
    return [(name, faces[r][0] + 1, faces[r][1]) if r in faces else (name, None, None) for r, name in enumerate(names)]


def draw_labels(image: np.ndarray, labels: list[FaceLabel], scale: int = 4) -> Image.Image:
    """``image`` upscaled ``scale`` times (nearest: the pixels as generated) with each face boxed in its reference's
    colour and captioned ``name similarity``."""
    canvas = Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)
    for label in labels:
        colour = COLOURS[label.ref % len(COLOURS)] if label.ref >= 0 else (200, 200, 200)
        x0, y0, x1, y1 = (v * scale for v in label.box)
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=2)
        text = f"{label.name} {label.similarity:.2f}" if label.ref >= 0 else "?"
        draw.rectangle((x0, max(0, y0 - 12), x0 + 7 * len(text), max(0, y0 - 12) + 12), fill=colour)
        draw.text((x0 + 2, max(0, y0 - 12)), text, fill=(0, 0, 0))
    return canvas
