"""Fine-grained group-level scores of a generated image (docs/design.md §6), the ranking behind DPO pairs.

Per subject (reference), after one-to-one matching of detected faces to references:

- ``artifact``: the detector's confidence in the matched face (0 when the subject is missing);
- ``harmony``: the subject is rendered consistently with its scene and prompt: half for the age the
  age judge reads being the target age, half for wearing its own clothing colour (not a neighbour's).
  On the cast this stands for texture harmony; a pasted-on face breaks both;
- ``identity``: identity calibration ``-|FaceSim_i - mu| / mu`` shifted to ``[0, 1]``: 1 at the
  similarity true photos reach (``mu``, the same measure on training renders), lower both for a weak
  likeness and for an over-copied reference (docs/design.md §1: "calibrated, not maximal copy-paste").

A subject's total is the weighted mean of the three; the group score is a softmin-weighted mean over
subjects (the worst subject weighted most) minus a penalty per missing or extra face.

Identity here is measured with the cast's ``encoder`` (the training-loss embedder), never with the
evaluation ``judge``, so the held-out FaceSim is not the quantity DPO was ranked on.
"""

from __future__ import annotations

import dataclasses

import torch

from idglow.cast.crops import face_crops
from idglow.cast.factors import CLOTHING_NAMES
from idglow.cast.judges import torso_boxes
from idglow.eval.facesim import match_faces
from idglow.utils.config import option

COMPONENTS = ("artifact", "harmony", "quality", "identity")  # harmony: the cast's judges; quality: photos (eval.photo_score)


@dataclasses.dataclass
class PairScoring:
    """How candidates are scored and which pairs are kept."""

    artifact_weight: float = option(1.0, "weight of the per-subject artifact score (detector confidence)")
    harmony_weight: float = option(1.0, "weight of the per-subject harmony score (target age, own clothing; the cast)")
    quality_weight: float = option(1.0, "weight of the per-subject no-reference quality score (photos: sharpness, noise)")
    identity_weight: float = option(1.0, "weight of the per-subject identity calibration 1 - |FaceSim - mu| / mu")
    temperature: float = option(0.1, "softmin temperature over subjects: lower weights the worst subject more")
    count_penalty: float = option(0.5, "subtracted per missing or extra face, divided by the expected count")
    min_gap: float = option(0.05, "keep a pair only when winner and loser group scores differ by at least this (0 keeps ties)")
    margin_scale: float = option(2.0, "margin of a pair = margin_scale * its group-score gap (units of the DPO logit z)")

    def validate(self) -> None:
        weights = (self.artifact_weight, self.harmony_weight, self.quality_weight, self.identity_weight)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"weights: need non-negative component weights with a positive sum, got {weights}")
        if self.temperature <= 0 or self.count_penalty < 0 or self.min_gap < 0 or self.margin_scale < 0:
            raise ValueError("temperature must be > 0; count_penalty, min_gap and margin_scale >= 0")


@torch.no_grad()
def subject_scores(image: torch.Tensor, ref_emb: torch.Tensor, ages: list[str], clothing: list[str],
                   judges: dict[str, torch.nn.Module], mu: float, embedder: str = "encoder") -> dict:
    """Per-subject scores of one image [3, H, W] in [-1, 1].

    Args:
        ref_emb: unit embeddings [N, E] of the subjects' references by ``judges[embedder]``.
        ages: target age per subject (``adult`` or ``child``); clothing: prompt colour per subject.
        judges: the cast judges (``detector``, ``encoder``, ``judge``, ``age``, ``colour``).
        mu: the embedder's FaceSim between references and true renders (calibration target).
        embedder: ``encoder`` when ranking training candidates; ``judge`` when scoring held-out benchmarks.

    Returns:
        ``{"artifact": [N], "harmony": [N], "identity": [N], "facesim": [N], "faces": F}`` (plain floats).
    """
    detected = judges["detector"].detect(image[None])[0]
    boxes, confidence = detected[:, :4], detected[:, 4]
    face_emb = judges[embedder](face_crops(image[None], boxes)) if len(boxes) else ref_emb.new_zeros(0, ref_emb.shape[1])
    sim, match = match_faces(ref_emb, face_emb)
    n = len(ref_emb)
    artifact, harmony, identity = [0.0] * n, [0.0] * n, [0.0] * n
    matched = torch.nonzero(match >= 0).flatten().tolist()
    if matched:
        faces = boxes[match[matched]]
        child = (judges["age"](face_crops(image[None], faces)).argmax(-1) == 1).tolist()
        colour = judges["colour"](face_crops(image[None], torso_boxes(faces), size=16, expand=1.0)).argmax(-1).tolist()
        for k, slot in enumerate(matched):
            artifact[slot] = float(confidence[match[slot]])
            age_ok = child[k] == (ages[slot] == "child")
            colour_ok = CLOTHING_NAMES[colour[k]] == clothing[slot]
            harmony[slot] = 0.5 * age_ok + 0.5 * colour_ok
            identity[slot] = max(0.0, 1.0 - abs(float(sim[slot]) - mu) / mu)
    return {"artifact": artifact, "harmony": harmony, "identity": identity, "facesim": sim.tolist(), "faces": len(boxes)}


def components(scores: dict) -> tuple[str, ...]:
    """The components a scorer produced, in :data:`COMPONENTS` order (the cast's: harmony; photos': quality)."""
    return tuple(c for c in COMPONENTS if c in scores)


def subject_totals(scores: dict, cfg: PairScoring) -> torch.Tensor:
    """Weighted mean of the components present per subject [N]."""
    present = components(scores)
    weights = torch.tensor([getattr(cfg, f"{c}_weight") for c in present])
    if weights.sum() <= 0:
        raise ValueError(f"weights: the components scored here ({', '.join(present)}) all have weight 0")
    parts = torch.tensor([scores[c] for c in present])  # [C, N]
    return (weights[:, None] * parts).sum(0) / weights.sum()


def worst_weights(totals: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmin weights over subjects [N] (sum 1): the lowest total gets the largest weight."""
    return torch.softmax(-totals / temperature, dim=0)


def group_score(scores: dict, cfg: PairScoring) -> float:
    """The group-level score of one image: softmin-weighted subject totals minus the count penalty."""
    totals = subject_totals(scores, cfg)
    expected = len(totals)
    penalty = cfg.count_penalty * abs(scores["faces"] - expected) / expected
    return float((worst_weights(totals, cfg.temperature) * totals).sum()) - penalty


def component_gaps(winner: dict, loser: dict, cfg: PairScoring) -> dict[str, float]:
    """Winner minus loser per component, each averaged over subjects with the loser's softmin weights
    (the fine-grained gaps: where, among the weakest subjects, the winner is better)."""
    weights = worst_weights(subject_totals(loser, cfg), cfg.temperature)
    return {c: float((weights * (torch.tensor(winner[c]) - torch.tensor(loser[c]))).sum()) for c in components(loser)}
