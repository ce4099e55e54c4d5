"""Order-free identity similarity of a group image to its references (Hungarian matching)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def match_similarity(sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Match N references to F faces one-to-one (Hungarian), maximising total similarity.

    Args:
        sim: similarity matrix [N, F] of references to detected faces.

    Returns:
        ``(similarity [N], face_index [N])``: each reference's matched similarity and face index; an
        unmatched reference (F < N) gets similarity 0 and index -1.
    """
    sim = np.asarray(sim, dtype=np.float64)
    n = sim.shape[0]
    matched, index = np.zeros(n), np.full(n, -1, dtype=np.int64)
    if n == 0 or sim.shape[1] == 0:
        return matched, index
    rows, cols = linear_sum_assignment(-sim)
    matched[rows], index[rows] = sim[rows, cols], cols
    return matched, index


def match_faces(reference_emb: torch.Tensor, face_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`match_similarity` on cosines of unit embeddings: references [N, D], faces [F, D].

    Returns:
        ``(similarity [N], face_index [N])`` as tensors (float32, long).
    """
    cos = (reference_emb @ face_emb.T).detach().cpu().numpy() if len(reference_emb) and len(face_emb) else \
        np.zeros((len(reference_emb), len(face_emb)))
    sim, index = match_similarity(cos)
    return torch.from_numpy(sim).float(), torch.from_numpy(index)


def id_confusion(sim: np.ndarray) -> np.ndarray:
    """ID-Conf per reference [N] from similarities [N, F]: top-2 similarities s1 >= s2 to the generated
    faces, ``min(1, (s1 - s2) / s1)``; high = the identity is clearly one face's. A reference with no
    face, or s1 <= 0, scores 0; with a single face, s2 = 0 (so ID-Conf = 1 when s1 > 0)."""
    sim = np.asarray(sim, dtype=np.float64)
    if sim.shape[1] == 0:
        return np.zeros(sim.shape[0])
    top = -np.sort(-sim, axis=1)
    s1 = top[:, 0]
    s2 = top[:, 1] if sim.shape[1] > 1 else np.zeros_like(s1)
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(s1 > 0, np.minimum(1.0, (s1 - np.maximum(s2, 0.0)) / s1), 0.0)
    return conf


def swapped(face_index: np.ndarray, face_x: np.ndarray) -> np.ndarray | None:
    """Which references [N] landed on another reference's place, where the order is known.

    References are listed left to right (as the benchmarks' prompts place them); when exactly N faces
    were found, reference k should match the k-th face from the left. Returns a bool array [N], or None
    when the face count differs from N (no order to compare with) or N < 2.
    """
    n = len(face_index)
    if n < 2 or len(face_x) != n or (face_index < 0).any():
        return None
    rank = np.argsort(np.argsort(face_x))  # face -> its left-to-right position
    return rank[face_index] != np.arange(n)


def face_sim(reference_emb: torch.Tensor, face_emb: torch.Tensor) -> float:
    """FaceSim: mean matched cosine over references; an unmatched reference counts 0."""
    sim, _ = match_faces(reference_emb, face_emb)
    return float(sim.mean()) if len(sim) else 0.0


def identity_gallery(keys: list, embeddings: np.ndarray) -> tuple[list, np.ndarray]:
    """One unit embedding per identity: the mean of its references' unit embeddings [R, D], renormalised.

    Args:
        keys: R identity keys (any hashable: a cast identity id, a reference file), one per row of ``embeddings``.

    Returns:
        ``(identities [G], gallery [G, D])``, identities in order of first appearance.
    """
    order: dict = {}
    for key in keys:
        order.setdefault(key, len(order))
    embeddings = np.asarray(embeddings, dtype=np.float64)
    gallery = np.zeros((len(order), embeddings.shape[1]))
    for key, row in zip(keys, embeddings):
        gallery[order[key]] += row / max(np.linalg.norm(row), 1e-12)
    gallery /= np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    return list(order), gallery


def identified(face_to_gallery: np.ndarray, face_index: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Identification (top-1 among every identity of the benchmark) of each reference's matched face.

    Args:
        face_to_gallery: similarities [F, G] of the image's faces to the benchmark's identity gallery.
        face_index: [N] the face each reference was matched to (-1: none), from :func:`match_similarity`.
        truth: [N] each reference's own row in the gallery.

    Returns:
        bool [N]: the matched face is most similar to the reference's own identity; False for an unmatched
        reference. Chance is 1 / G.
    """
    face_index, truth = np.asarray(face_index), np.asarray(truth)
    out = np.zeros(len(face_index), dtype=bool)
    hit = face_index >= 0
    if hit.any():
        best = np.asarray(face_to_gallery)[face_index[hit]].argmax(axis=1)
        out[hit] = best == truth[hit]
    return out
