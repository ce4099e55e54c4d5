"""The cast backend: the judges' face detector and evaluation ``judge`` embedder (never the training ``encoder``)."""

from __future__ import annotations

import numpy as np
import torch

from idglow.cast.crops import face_crops, to_tensor
from idglow.cast.judge_training import load_judges
from idglow.faces.base import DetectedFaces, FaceBackend, unit
from idglow.utils.defaults import JUDGES


class SynthFaces(FaceBackend):
    """Cast faces. A reference is the identity crop itself (the cast's references are face crops)."""

    name, dim = "synth", 128

    def __init__(self, judges: str = JUDGES):
        self.judges = load_judges(judges)

    @torch.no_grad()
    def faces(self, image: np.ndarray) -> DetectedFaces:
        tensor = to_tensor(image)[None]
        found = self.judges["detector"].detect(tensor)[0]
        if not len(found):
            return DetectedFaces(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, self.dim), np.float32))
        embeddings = self.judges["judge"](face_crops(tensor, found[:, :4]))
        return DetectedFaces(found[:, :4].numpy(), found[:, 4].numpy(), unit(embeddings.numpy()))

    @torch.no_grad()
    def reference(self, image: np.ndarray, source: str) -> np.ndarray:
        return unit(self.judges["judge"](to_tensor(image)[None]).numpy())[0]
