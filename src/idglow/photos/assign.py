"""Which person each face of a group photo is: one-to-one assignment by identity similarity, ambiguity refused."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

UNKNOWN, AMBIGUOUS = "unknown", "ambiguous"


def assign_faces(similarity: np.ndarray, min_similarity: float, margin: float) -> tuple[np.ndarray, list[str]]:
    """One person per face, one face per person (Hungarian, maximal total similarity).

    A face is *unknown* when its assigned person is below ``min_similarity`` (a stranger, or nobody left), and
    *ambiguous* when another person is within ``margin`` of its match, or another face is within ``margin`` of it for
    that person (a look-alike, two photos of one person in the gallery under two names).

    Args:
        similarity: [F, P] face-by-person similarity (the backend's scale: 1 the same image).

    Returns:
        ``(person [F], reasons [F])``: the person index of each face (-1 when not assigned) and ``""``, ``unknown`` or
        ``ambiguous``.
    """
    faces, people = similarity.shape
    person, reasons = np.full(faces, -1), [UNKNOWN] * faces
    if not faces or not people:
        return person, reasons
    for f, p in zip(*linear_sum_assignment(-similarity)):
        score = similarity[f, p]
        if score < min_similarity:
            continue
        rivals = np.concatenate([np.delete(similarity[f], p), np.delete(similarity[:, p], f)])
        if rivals.size and score - rivals.max() < margin:
            reasons[f] = AMBIGUOUS
            continue
        person[f], reasons[f] = p, ""
    return person, reasons


def positions(count: int) -> list[str]:
    """Position phrases of ``count`` people left to right, as the cast's captions say them."""
    from idglow.cast.scenes import POSITIONS

    if count in POSITIONS:
        return list(POSITIONS[count])
    return [f"{i + 1}th from the left" for i in range(count)]
