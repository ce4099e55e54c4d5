"""The face-backend interface: an image in, face boxes and unit identity embeddings out."""

from __future__ import annotations

import abc
import dataclasses

import numpy as np


class NoFaceError(ValueError):
    """A reference photo in which the backend finds no face."""


@dataclasses.dataclass
class DetectedFaces:
    """Faces found in one image.

    Attributes:
        boxes: [F, 4] float ``x0, y0, x1, y1`` in pixels.
        scores: [F] detector confidence (backend-specific scale; higher is surer).
        embeddings: [F, D] identity embeddings, compared by the backend's :meth:`FaceBackend.similarity`.
    """

    boxes: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


class FaceBackend(abc.ABC):
    """Detects and embeds faces. Images are uint8 arrays [H, W, 3] (RGB)."""

    name: str = ""
    dim: int = 0

    @abc.abstractmethod
    def faces(self, image: np.ndarray) -> DetectedFaces:
        """Every face the backend finds in ``image``."""

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Identity similarity [N, M] of embeddings a [N, D] and b [M, D]: 1 same image, ~0 or below strangers.

        The default is the cosine; backends whose recognizer is calibrated on another measure override it.
        """
        return unit(a) @ unit(b).T if len(a) and len(b) else np.zeros((len(a), len(b)), np.float32)

    def reference(self, image: np.ndarray, source: str) -> np.ndarray:
        """Unit embedding [D] of the person in a reference photo: its largest face.

        Raises:
            NoFaceError: naming ``source`` when the photo holds no face.
        """
        found = self.faces(image)
        if not len(found):
            raise NoFaceError(f"{source}: no face found by the {self.name} backend")
        areas = (found.boxes[:, 2] - found.boxes[:, 0]) * (found.boxes[:, 3] - found.boxes[:, 1])
        return found.embeddings[int(np.argmax(areas))]


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
