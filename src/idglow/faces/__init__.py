"""Face backends behind one interface: detect faces in an image and embed them for identity scoring.

- ``synth``: the cast's judges (detector + evaluation ``judge`` embedder) for cast images.
- ``dlib``: real photos, offline: HOG detector, 5-point alignment, ResNet 128-d descriptors
  (``pip install idglow[real]``; models from ``face-recognition-models``).
- ``insightface``: optional, ArcFace-style embeddings from a user-supplied local model folder.

Every backend returns unit-length embeddings, so identity similarity is always a cosine in [-1, 1].
"""

from __future__ import annotations

from idglow.faces.base import DetectedFaces, FaceBackend, NoFaceError
from idglow.utils.defaults import JUDGES

BACKENDS = ("synth", "dlib", "insightface")


def load_backend(name: str, judges: str = JUDGES, model_dir: str | None = None) -> FaceBackend:
    """The face backend ``name``.

    Args:
        judges: the cast judges folder (``synth``).
        model_dir: a local insightface model folder (``insightface``), e.g. ``~/.insightface/models/buffalo_l``.
    """
    if name == "synth":
        from idglow.faces.synth import SynthFaces

        return SynthFaces(judges)
    if name == "dlib":
        from idglow.faces.dlib_faces import DlibFaces

        return DlibFaces()
    if name == "insightface":
        from idglow.faces.insightface_faces import InsightFaceFaces

        return InsightFaceFaces(model_dir)
    raise ValueError(f"backend: unknown face backend {name!r}; choose one of {BACKENDS}")


__all__ = ["BACKENDS", "DetectedFaces", "FaceBackend", "NoFaceError", "load_backend"]
