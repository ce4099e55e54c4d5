"""dlib backend for real photos, fully offline: HOG detector, 5-point alignment, ResNet 128-d.

Similarity: dlib's descriptors are calibrated for Euclidean distance d (same person below 0.6 on
LFW), and their cosines are crowded near 1 (0.88 between the astronaut and Grace Hopper). We map the
distance linearly: ``similarity = 1 - d / 1.2``, so an identical face scores 1, dlib's decision
threshold (d = 0.6) scores 0.5, and d >= 1.2 (far apart) scores 0 or below. Measured on the shipped
photos: the astronaut and her mirror image d = 0.19 (0.85); astronaut vs Grace Hopper d = 0.70 (0.42).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from idglow.faces.base import DetectedFaces, FaceBackend

THRESHOLD = 0.6  # dlib's same-person distance

INSTALL_HINT = "the dlib backend needs `pip install idglow[real]` (dlib-bin and face-recognition-models)"


def model_folder() -> Path:
    """Folder of the dlib model files shipped by ``face-recognition-models``.

    Located with ``find_spec`` rather than imported: importing that package fails on current setuptools
    (it imports ``pkg_resources``).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(INSTALL_HINT)
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class DlibFaces(FaceBackend):
    """HOG face detection, 5-point landmarks, 128-d ResNet descriptors.

    Args:
        upsample: times the image is upsampled before detection (1 finds faces down to ~40 px).
        min_score: HOG detections below this confidence are dropped (0.3 drops e.g. the astronaut's
            mission patch, scored 0.12; her face scores 1.16).
        jitter: dlib's re-sampling of each face when embedding (0 = once; more is slower, steadier).
    """

    name, dim = "dlib", 128

    def __init__(self, upsample: int = 1, min_score: float = 0.3, jitter: int = 0):
        try:
            import dlib
        except ImportError as err:
            raise ImportError(INSTALL_HINT) from err
        models = model_folder()
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        self.upsample, self.min_score, self.jitter, self._dlib = upsample, min_score, jitter, dlib

    def faces(self, image: np.ndarray) -> DetectedFaces:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        rects, scores, _ = self.detector.run(image, self.upsample, 0.0)
        kept = [(r, s) for r, s in zip(rects, scores) if s >= self.min_score]
        rects, scores = [r for r, _ in kept], [s for _, s in kept]
        if not rects:
            return DetectedFaces(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, self.dim), np.float32))
        shapes = self._dlib.full_object_detections([self.shape(image, r) for r in rects])
        descriptors = np.array(self.encoder.compute_face_descriptor(image, shapes, self.jitter))
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], dtype=np.float32)
        return DetectedFaces(boxes, np.asarray(scores, np.float32), descriptors.astype(np.float32))

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``1 - d / (2 * 0.6)`` for Euclidean descriptor distance d (see the module docstring)."""
        if not len(a) or not len(b):
            return np.zeros((len(a), len(b)), np.float32)
        distance = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
        return (1.0 - distance / (2 * THRESHOLD)).astype(np.float32)
