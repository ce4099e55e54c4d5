"""Optional insightface backend: RetinaFace/SCRFD detection and ArcFace embeddings from a local model folder.

Nothing is downloaded: ``model_dir`` must be an unpacked insightface model pack (e.g. ``buffalo_l``,
holding ``det_*.onnx`` and ``w600k_*.onnx``). Needs ``pip install insightface onnxruntime``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from idglow.faces.base import DetectedFaces, FaceBackend, unit


class InsightFaceFaces(FaceBackend):
    """ArcFace-style 512-d embeddings (cosine similarity), as used by the peers' benchmarks."""

    name, dim = "insightface", 512

    def __init__(self, model_dir: str | None, det_size: int = 640):
        if not model_dir:
            raise ValueError("model_dir: the insightface backend needs a local model folder (--model-dir), e.g. "
                             "~/.insightface/models/buffalo_l; nothing is downloaded")
        folder = Path(model_dir).expanduser()
        if not folder.is_dir() or not list(folder.glob("*.onnx")):
            raise FileNotFoundError(f"model_dir: {folder} holds no insightface .onnx models")
        try:
            from insightface.app import FaceAnalysis
        except ImportError as err:
            raise ImportError("the insightface backend needs `pip install insightface onnxruntime`") from err
        # FaceAnalysis looks for <root>/models/<name>; the user names the model folder itself.
        self.app = FaceAnalysis(name=folder.name, root=str(folder.parent.parent), allowed_modules=["detection", "recognition"],
                                providers=["CPUExecutionProvider"])
        self.app.prepare(ctx_id=-1, det_size=(det_size, det_size))

    def faces(self, image: np.ndarray) -> DetectedFaces:
        found = self.app.get(np.ascontiguousarray(image[:, :, ::-1]))  # insightface expects BGR
        if not found:
            return DetectedFaces(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, self.dim), np.float32))
        return DetectedFaces(np.array([f.bbox for f in found], np.float32), np.array([f.det_score for f in found], np.float32),
                             unit(np.array([f.embedding for f in found])))
