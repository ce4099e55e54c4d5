"""Order-free identity similarity of a group image to its references (Hungarian matching)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def match_faces(reference_emb: torch.Tensor, face_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Match references to detected faces one-to-one, maximising total cosine similarity.

    Args:
        reference_emb: unit embeddings of the N references [N, D].
        face_emb: unit embeddings of the F detected faces [F, D].

    Returns:
        ``(similarity [N], face_index [N])``: each reference's matched cosine and face index; an
        unmatched reference (F < N) gets similarity 0 and index -1.
    """
    n = reference_emb.shape[0]
    sim = torch.zeros(n)
    index = torch.full((n,), -1, dtype=torch.long)
    if n == 0 or face_emb.shape[0] == 0:
        return sim, index
    cos = (reference_emb @ face_emb.T).detach().cpu().numpy().astype(np.float64)
    rows, cols = linear_sum_assignment(-cos)
    sim[torch.from_numpy(rows)] = torch.from_numpy(cos[rows, cols]).float()
    index[torch.from_numpy(rows)] = torch.from_numpy(cols)
    return sim, index


def face_sim(reference_emb: torch.Tensor, face_emb: torch.Tensor) -> float:
    """FaceSim: mean matched cosine over references; an unmatched reference counts 0."""
    sim, _ = match_faces(reference_emb, face_emb)
    return float(sim.mean()) if len(sim) else 0.0
