"""Image quality on the cast, scored by the judges: face detection against the expected head count,
and a Fréchet distance in judge features against true renders.

The features are the face detector's convolutional features, average- and max-pooled over the
image (128-d): they respond to people, faces and clothing, which is what the cast is made of.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg

from idglow.cast.judges import FaceDetector


@torch.no_grad()
def detector_features(detector: FaceDetector, images: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """images [B, 3, H, W] in [-1, 1] -> pooled features [B, 2 * C]."""
    out = []
    for start in range(0, len(images), chunk):
        f = detector.body(images[start : start + chunk])
        out.append(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1))
    return torch.cat(out)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a [N, D] and b [M, D] (N, M >= 2)."""
    if len(a) < 2 or len(b) < 2:  # one sample has no covariance; scipy's sqrtm would fail on its NaNs
        raise ValueError(f"Fréchet distance: at least 2 samples per set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # no `disp=False`: scipy 1.16 dropped it; the imaginary round-off of a nearly singular product is dropped here
    covmean = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


@torch.no_grad()
def detection_stats(detector: FaceDetector, images: torch.Tensor, expected: list[int]) -> dict:
    """Faces found vs expected per image: detection rate, count accuracy, mean confidence."""
    found, scores = [], []
    for start in range(0, len(images), 128):
        for det in detector.detect(images[start : start + 128]):
            found.append(len(det))
            scores.extend(det[:, 4].tolist())
    expected_t, found_t = torch.tensor(expected), torch.tensor(found)
    return {
        "faces_expected": int(expected_t.sum()),
        "faces_found": int(found_t.sum()),
        "detection_rate": float(torch.minimum(found_t, expected_t).sum() / expected_t.sum().clamp_min(1)),
        "count_accuracy": float((found_t == expected_t).float().mean()),
        "mean_confidence": float(np.mean(scores)) if scores else 0.0,
    }


def cast_quality(detector: FaceDetector, generated: torch.Tensor, real: torch.Tensor, expected: list[int]) -> dict:
    """Detection statistics of ``generated`` and the Fréchet distance of its judge features to ``real``."""
    fd = frechet_distance(detector_features(detector, generated).numpy().astype(np.float64),
                          detector_features(detector, real).numpy().astype(np.float64))
    return {"frechet_judge": fd, **detection_stats(detector, generated, expected)}
