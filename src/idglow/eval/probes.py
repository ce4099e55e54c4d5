"""Which identity factors a face carries: linear probes on judge embeddings (``benchmarks/identity_cap.py``).

A probe per factor of :class:`idglow.cast.factors.Identity` is fitted on the judge embeddings of true renders
of *training* identities and read on faces of held-out identities: true renders (what the judge can read at
all), the base model's drawings, and a trained model's outputs. Categorical factors keep their classes
(skin tone, eye colour, hair colour, hair style); moles and freckles are yes / no; continuous factors (face
shape, eye size and spacing, nose, mouth, brows) are split at their median over the probe's training faces,
so chance is about 1/2 for them and the majority-class rate for the others.
"""

from __future__ import annotations

import numpy as np
import torch

from idglow.cast.factors import EYE_COLOURS, HAIR_COLOURS, HAIR_STYLES, SKIN_TONES, Identity

CATEGORICAL = {"skin": len(SKIN_TONES), "eye_colour": len(EYE_COLOURS), "hair_colour": len(HAIR_COLOURS),
               "hair_style": len(HAIR_STYLES)}
BINARY = ("mole", "freckles")
CONTINUOUS = ("face_aspect", "jaw", "eye_size", "eye_spacing", "eye_shape", "nose_length", "nose_width",
              "mouth_width", "brow_angle")
FACTORS = (*CATEGORICAL, *BINARY, *CONTINUOUS)


def factor_values(identities: list[Identity]) -> dict[str, np.ndarray]:
    """Raw factor values [N] per factor (moles and freckles as 0/1)."""
    out = {name: np.array([getattr(p, name) for p in identities]) for name in (*CATEGORICAL, *CONTINUOUS)}
    out["mole"] = np.array([p.mole is not None for p in identities], dtype=np.int64)
    out["freckles"] = np.array([p.freckles for p in identities], dtype=np.int64)
    return out


def class_labels(values: dict[str, np.ndarray], thresholds: dict[str, float]) -> dict[str, np.ndarray]:
    """Class indices [N] per factor: continuous factors become 1 above their threshold, 0 at or below."""
    return {name: (v > thresholds[name]).astype(np.int64) if name in thresholds else v.astype(np.int64)
            for name, v in values.items()}


def num_classes(name: str) -> int:
    return CATEGORICAL.get(name, 2)


def fit_probe(features: torch.Tensor, labels: torch.Tensor, classes: int, l2: float = 1e-3,
              iterations: int = 200) -> torch.nn.Linear:
    """Multinomial logistic regression (L-BFGS, L2 ``l2``) of ``labels`` [N] on ``features`` [N, D]."""
    torch.manual_seed(0)
    probe = torch.nn.Linear(features.shape[1], classes)
    torch.nn.init.zeros_(probe.weight)
    torch.nn.init.zeros_(probe.bias)
    optimiser = torch.optim.LBFGS(probe.parameters(), max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe(features), labels) + l2 * probe.weight.square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return probe.eval()


class FactorProbes:
    """One fitted probe per factor, and the thresholds that split continuous factors.

    Args:
        features: judge embeddings [N, D] of true-render faces of training identities.
        identities: who each face is ([N] :class:`Identity`).
    """

    def __init__(self, features: torch.Tensor, identities: list[Identity]):
        values = factor_values(identities)
        self.thresholds = {name: float(np.median(values[name])) for name in CONTINUOUS}
        labels = class_labels(values, self.thresholds)
        self.majority = {name: np.bincount(labels[name], minlength=num_classes(name)).argmax() for name in FACTORS}
        with torch.enable_grad():
            self.probes = {name: fit_probe(features.float(), torch.from_numpy(labels[name]), num_classes(name))
                           for name in FACTORS}

    @torch.no_grad()
    def accuracy(self, features: torch.Tensor, identities: list[Identity]) -> dict[str, dict[str, float]]:
        """Per factor: probe accuracy on faces [N, D] of ``identities`` [N], and the majority-class rate (chance)."""
        labels = class_labels(factor_values(identities), self.thresholds)
        out = {}
        for name in FACTORS:
            predicted = self.probes[name](features.float()).argmax(-1).numpy()
            out[name] = {"accuracy": float((predicted == labels[name]).mean()),
                         "chance": float((labels[name] == self.majority[name]).mean())}
        return out
