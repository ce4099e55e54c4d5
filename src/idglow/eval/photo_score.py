"""Per-subject scores of a generated *photo* for DPO pairs: what :mod:`idglow.eval.group_score` computes on the cast,
measured with a real face backend and a no-reference quality score instead of the cast's judges.

Per subject (reference), after one-to-one matching of detected faces to references on the backend's similarity:

- ``artifact``: the detector's confidence in the matched face, clipped to [0, 1] (dlib's HOG margin: 1 and above is a
  clear face, the astronaut's scores 1.16; insightface's det_score is already a probability); 0 when missing;
- ``quality``: a no-reference quality score of the matched face crop, ``sharpness x exp(-noise / 0.05)``:
  sharpness is ``1 - blur_effect`` (Crete-Roffet et al. 2007, a no-reference perceptual blur metric) and noise is
  ``estimate_sigma`` (Donoho's wavelet MAD), both from scikit-image on the grey crop in [0, 1]. The product rewards a
  sharp face and punishes speckle, which blur alone would reward. Chosen because it works offline with nothing to
  download: pyiqa and piq fetch their BRISQUE / NIQE / CLIP-IQA weights on first use, OpenCV's BRISQUE needs model
  files its wheels lack, and scikit-image is maintained and already installed with ``idglow[real]``;
- ``identity``: identity calibration ``max(0, 1 - |sim - mu| / mu)`` with ``mu`` the similarity the *photos' own*
  true scenes reach against their references (:func:`calibrate`), so an over-copied face scores lower, as on the cast.

The group score (softmin over subjects, count penalty) is :func:`idglow.eval.group_score.group_score`, unchanged.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from idglow.faces.base import FaceBackend

NOISE_SCALE = 0.05  # grey levels in [0, 1]: a clean photo's face is ~0.01, speckle ~0.1


def face_quality(image: np.ndarray, box: np.ndarray) -> float:
    """No-reference quality in [0, 1] of the face at ``box`` [4] in ``image`` uint8 [H, W, 3] (see the module docstring)."""
    from skimage.color import rgb2gray
    from skimage.measure import blur_effect
    from skimage.restoration import estimate_sigma

    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    crop = image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
    if min(crop.shape[:2]) < 4:  # too small to measure anything
        return 0.0
    grey = rgb2gray(crop)
    sharpness = 1.0 - float(blur_effect(grey))
    noise = float(estimate_sigma(grey))
    return float(np.clip(sharpness * np.exp(-noise / NOISE_SCALE), 0.0, 1.0))


def photo_subject_scores(image: np.ndarray, ref_emb: np.ndarray, backend: FaceBackend, mu: float) -> dict:
    """Per-subject scores of one photo uint8 [H, W, 3] against the subjects' reference embeddings [N, D].

    Returns:
        ``{"artifact": [N], "quality": [N], "identity": [N], "facesim": [N], "faces": F}`` (plain floats).
    """
    found = backend.faces(image)
    n = len(ref_emb)
    artifact, quality, identity, facesim = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    if len(found):
        sim = backend.similarity(ref_emb, found.embeddings)  # [N, F]
        for slot, face in zip(*linear_sum_assignment(-sim)):
            facesim[slot] = float(sim[slot, face])
            artifact[slot] = float(np.clip(found.scores[face], 0.0, 1.0))
            quality[slot] = face_quality(image, found.boxes[face])
            identity[slot] = max(0.0, 1.0 - abs(facesim[slot] - mu) / mu)
    return {"artifact": artifact, "quality": quality, "identity": identity, "facesim": facesim, "faces": len(found)}


def calibrate(scenes: list[tuple[np.ndarray, np.ndarray]], backend: FaceBackend, fallback: float) -> tuple[float, int]:
    """``mu``: the mean matched similarity of the true scenes ``(image uint8 [H, W, 3], reference embeddings [N, D])``
    to their own references (what a real photo of these people reaches at this size), over the subjects whose face the
    backend finds; ``fallback`` when it finds none. Returns ``(mu, subjects measured)``."""
    values: list[float] = []
    for image, refs in scenes:
        found = backend.faces(image)
        if len(found) and len(refs):
            sim = backend.similarity(refs, found.embeddings)
            rows, cols = linear_sum_assignment(-sim)
            values += sim[rows, cols].tolist()
    return (float(np.mean(values)), len(values)) if values else (fallback, 0)
