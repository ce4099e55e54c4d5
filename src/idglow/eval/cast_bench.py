"""Scoring generations on the cast's benchmarks (synth-group, synth-age) with the judges (docs/design.md §6).

Per image: detect faces, embed them and the references with the evaluation ``judge``, match them
one-to-one (Hungarian), then read age and clothing colour of each matched subject with the age and
colour judges. Definitions:

- FaceSim: mean matched cosine over references (an unmatched reference counts 0); normalised by
  ``mu_real`` (the same measure on true renders).
- count accuracy: detected faces == expected people.
- child rate / mini-adult rate (age task): share of references matched to a face the age judge calls
  a child / an adult. The prompts ask for children, so an adult face on the canvas is the
  "mini-adult" failure (adult facial structure copied from the reference).
- leakage rate (scenes of 2+ people): share of matched subjects whose clothing colour is another
  subject's prompt colour instead of its own; colour accuracy: share wearing their own.
- swap rate (scenes of 2+ people where every reference was matched and exactly that many faces found): share of
  references whose face is not at its place in the prompt's left-to-right order.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from idglow.cast.crops import face_crops
from idglow.cast.factors import CLOTHING_NAMES
from idglow.cast.judges import torso_boxes
from idglow.eval.facesim import identified, match_faces, swapped


@torch.no_grad()
def _matched_faces(image: torch.Tensor, ref_emb: torch.Tensor, judges: dict[str, torch.nn.Module]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The faces the detector finds in ``image`` [3, H, W], Hungarian-matched to the references' embeddings [N, D]:
    ``(boxes [F, 4], embeddings [F, D], similarity [N], face index [N] (-1: unmatched))``."""
    boxes = judges["detector"].detect(image[None])[0][:, :4]
    face_emb = judges["judge"](face_crops(image[None], boxes)) if len(boxes) else ref_emb.new_zeros(0, ref_emb.shape[1])
    sim, match = match_faces(ref_emb, face_emb)
    return boxes, face_emb, sim, match


def score_image(image: torch.Tensor, refs: torch.Tensor, record: dict, judges: dict[str, torch.nn.Module],
                gallery: tuple[dict, torch.Tensor] | None = None, target: torch.Tensor | None = None) -> dict:
    """Judge one generated image [3, H, W] in [-1, 1] against its reference crops [N, 3, h, w] and benchmark record;
    with the benchmark's identity gallery (:func:`judge_gallery`) also identification (top-1 among its identities);
    with the record's true render ``target`` [3, H, W] also ``copy_paste`` (:func:`copy_paste`)."""
    ref_emb = judges["judge"](refs)
    boxes, face_emb, sim, match = _matched_faces(image, ref_emb, judges)
    matched = match >= 0
    expected = record["expected"]
    result = {"facesim": float(sim.mean()), "count_ok": float(len(boxes) == expected["count"]), "size": len(refs),
              "task": record["task"], "facesim_per_ref": sim.tolist(), "face_index": match.tolist(),
              "boxes": boxes.tolist()}
    if gallery is not None:
        rows, embeddings = gallery
        truth = np.array([rows[i] for i in expected["identities"]])
        hits = identified((face_emb @ embeddings.T).numpy(), match.numpy(), truth)
        result.update(identified=int(hits.sum()), identified_slots=np.flatnonzero(hits).tolist(), gallery=len(rows))
    if matched.any():
        faces = boxes[match[matched]]
        child = judges["age"](face_crops(image[None], faces)).argmax(-1) == 1
        colour = judges["colour"](face_crops(image[None], torso_boxes(faces), size=16, expand=1.0)).argmax(-1)
    else:
        child, colour = torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.long)
    result["child"] = float(child.sum()) / len(refs)
    result["adult"] = float((~child).sum()) / len(refs)
    own = [CLOTHING_NAMES.index(c) for c in expected["clothing"]]
    wearing_own, leaked_slots = 0, []
    slots = torch.nonzero(matched).flatten().tolist()
    for slot, predicted in zip(slots, colour.tolist()):
        others = {c for k, c in enumerate(own) if k != slot}
        wearing_own += predicted == own[slot]
        if predicted != own[slot] and predicted in others:
            leaked_slots.append(slot)
    result["matched"] = int(matched.sum())
    swaps = swapped(match.numpy(), ((boxes[:, 0] + boxes[:, 2]) / 2).numpy()) if len(boxes) == len(refs) else None
    result["swaps"] = None if swaps is None else int(swaps.sum())
    if target is not None:
        result["copy_paste"] = _copy_paste(face_emb, match, ref_emb, target, judges)
    result["own_colour"], result["leaked"] = wearing_own, len(leaked_slots)
    # per reference, for the badcase library: who leaked, who was drawn as an adult, who is missing
    result["leaked_slots"] = leaked_slots
    result["adult_slots"] = [slot for slot, is_child in zip(slots, child.tolist()) if not is_child]
    result["unmatched_slots"] = torch.nonzero(~matched).flatten().tolist()
    return result


@torch.no_grad()
def copy_paste(image: torch.Tensor, target: torch.Tensor, refs: torch.Tensor, judges: dict[str, torch.nn.Module]) -> float | None:
    """WithAnyone's copy-paste measure of one generated image [3, H, W] in [-1, 1], given the true render of the same
    record (``target``, same shape) and the reference crops [N, 3, h, w]: for each reference whose face is found in
    both images, ``sim(generated face, reference) - sim(generated face, the person's face in the true render)``,
    averaged. Above 0 the face leans toward the reference photo itself (pose, light) more than toward the same person
    in this scene; None when no reference is found in both."""
    ref_emb = judges["judge"](refs)
    _, face_emb, _, match = _matched_faces(image, ref_emb, judges)
    return _copy_paste(face_emb, match, ref_emb, target, judges)


def _copy_paste(face_emb: torch.Tensor, match: torch.Tensor, ref_emb: torch.Tensor, target: torch.Tensor,
                judges: dict[str, torch.nn.Module]) -> float | None:
    """:func:`copy_paste` from the generated image's matched faces (embeddings [F, D], face index [N])."""
    _, true_emb, _, true_match = _matched_faces(target, ref_emb, judges)
    values = [float(face_emb[g] @ ref_emb[k] - face_emb[g] @ true_emb[t])
              for k, (g, t) in enumerate(zip(match.tolist(), true_match.tolist())) if g >= 0 and t >= 0]
    return float(np.mean(values)) if values else None


def ratio_interval(values: np.ndarray, weights: np.ndarray | None = None, confidence: float = 0.95,
                   resamples: int = 2000) -> list[float]:
    """Bootstrap percentile interval, over records, of ``sum(w * v) / sum(w)`` (the mean when ``weights`` is None):
    ``[low, high]``. Records are resampled whole, so a rate weighted by group size keeps its weighting."""
    values = np.asarray(values, dtype=float)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=float)
    if len(values) < 2 or np.ptp(values) == 0:
        mean = float((values * weights).sum() / weights.sum())
        return [mean, mean]
    result = stats.bootstrap((values * weights, weights), lambda a, b: a.sum() / b.sum(), paired=True, vectorized=False,
                             confidence_level=confidence, n_resamples=resamples, method="percentile", random_state=0)
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def summarise(scores: list[dict], mu_real: float) -> dict:
    """Benchmark-level metrics from :func:`score_image` results (definitions in the module docstring)."""
    if not scores:
        raise ValueError("scores: no generations to summarise")
    facesim = float(np.mean([s["facesim"] for s in scores]))
    by_size = defaultdict(list)
    for s in scores:
        by_size[s["size"]].append(s["facesim"])
    multi = [s for s in scores if s["size"] >= 2]
    matched_multi = sum(s["matched"] for s in multi)
    matched = sum(s["matched"] for s in scores)
    identifiable = [s for s in scores if "identified" in s]
    refs = sum(s["size"] for s in identifiable)
    out = {
        "images": len(scores),
        "facesim": facesim,
        "facesim_norm": facesim / mu_real,
        "mu_real": mu_real,
        "facesim_by_size": {str(k): float(np.mean(v)) for k, v in sorted(by_size.items())},
        "count_accuracy": float(np.mean([s["count_ok"] for s in scores])),
        "leakage_rate": sum(s["leaked"] for s in multi) / matched_multi if matched_multi else None,
        "colour_accuracy": sum(s["own_colour"] for s in scores) / matched if matched else None,
        "identification": sum(s["identified"] for s in identifiable) / refs if refs else None,
        "identification_chance": 1.0 / identifiable[0]["gallery"] if identifiable else None,
    }
    out["intervals"] = {"facesim_norm": [v / mu_real for v in ratio_interval([s["facesim"] for s in scores])],
                        "count_accuracy": ratio_interval([s["count_ok"] for s in scores])}
    leaky = [s for s in multi if s["matched"]]
    if leaky:
        out["intervals"]["leakage_rate"] = ratio_interval([s["leaked"] / s["matched"] for s in leaky], [s["matched"] for s in leaky])
    coloured = [s for s in scores if s["matched"]]
    if coloured:
        out["intervals"]["colour_accuracy"] = ratio_interval([s["own_colour"] / s["matched"] for s in coloured],
                                                             [s["matched"] for s in coloured])
    ordered = [s for s in scores if s.get("swaps") is not None]  # older score files have no swaps
    if ordered:
        out["swap_rate"] = sum(s["swaps"] for s in ordered) / sum(s["size"] for s in ordered)
        out["intervals"]["swap_rate"] = ratio_interval([s["swaps"] / s["size"] for s in ordered], [s["size"] for s in ordered])
    grouped = [s["group_score"] for s in scores if s.get("group_score") is not None]  # older score files have none
    if grouped:
        out["group_score"] = float(np.mean(grouped))
        out["intervals"]["group_score"] = ratio_interval(grouped)
    copies = [s["copy_paste"] for s in scores if s.get("copy_paste") is not None]
    if copies:
        out["copy_paste"] = float(np.mean(copies))
        out["intervals"]["copy_paste"] = ratio_interval(copies)
    age = [s for s in scores if s["task"] == "age"]
    if age:
        weights = np.array([s["size"] for s in age], dtype=float)
        out["child_rate"] = float(np.average([s["child"] for s in age], weights=weights))
        out["mini_adult_rate"] = float(np.average([s["adult"] for s in age], weights=weights))
        out["intervals"]["child_rate"] = ratio_interval([s["child"] for s in age], weights)
        out["intervals"]["mini_adult_rate"] = ratio_interval([s["adult"] for s in age], weights)
    return out


def colour_binding(scores: list[dict]) -> dict | None:
    """Where each matched person's clothing colour comes from, over the scenes of 2+ people in ``scores``
    (:func:`score_image` records): shares of matched people wearing their ``own`` prompt colour, another subject's
    (``leaked``) or ``neither``; ``binding``, own / (own + leaked), how often a prompt colour worn is on its person; and
    ``chance``, the binding of a model that deals the prompt's colours out at random (1 / people, averaged over the
    matched people). None without a matched person in a scene of 2+."""
    multi = [s for s in scores if s["size"] >= 2 and s["matched"]]
    matched = sum(s["matched"] for s in multi)
    if not matched:
        return None
    own, leaked = sum(s["own_colour"] for s in multi), sum(s["leaked"] for s in multi)
    return {"people": matched, "own": own / matched, "leaked": leaked / matched, "neither": 1.0 - (own + leaked) / matched,
            "binding": own / (own + leaked) if own + leaked else None,
            "chance": sum(s["matched"] / s["size"] for s in multi) / matched}


@torch.no_grad()
def judge_gallery(records: list[dict], refs: list[torch.Tensor], judge: torch.nn.Module) -> tuple[dict, torch.Tensor]:
    """The identity gallery of a cast benchmark in ``judge`` embeddings: every record's reference crops [N_r, 3, h, w]
    averaged per identity (``expected.identities``). Returns ``({identity: row}, gallery [G, D])``."""
    from idglow.eval.facesim import identity_gallery

    keys = [i for record in records for i in record["expected"]["identities"]]
    embeddings = torch.cat([judge(crops) for crops in refs]).numpy()
    identities, gallery = identity_gallery(keys, embeddings)
    return {key: row for row, key in enumerate(identities)}, torch.from_numpy(gallery).float()


@torch.no_grad()
def cast_extras(generated: list[tuple[dict, torch.Tensor]], manifest: str | Path,
                judges: dict[str, torch.nn.Module]) -> tuple[dict, list[dict]]:
    """The cast-only metrics of generated images [3, H, W] paired with their benchmark records: child and
    mini-adult rates (age task), leakage and colour accuracy, and the Fréchet distance in judge features
    to the benchmark's true renders (``expected.target``) of the same records; and the
    :func:`score_image` result of each image."""
    from idglow.cast.crops import to_tensor
    from idglow.data.images import read_rgb
    from idglow.eval.cast_quality import cast_quality

    manifest = Path(manifest)
    scores = []
    for record, image in generated:
        refs = torch.stack([to_tensor(read_rgb(manifest.parent / r, f"{manifest}:{record['_line']}: refs")) for r in record["refs"]])
        scores.append(score_image(image, refs, record, judges))
    keys = ("leakage_rate", "colour_accuracy", "child_rate", "mini_adult_rate")
    out = {k: v for k, v in summarise(scores, 1.0).items() if k in keys}
    targets = [record["expected"].get("target") for record, _ in generated]
    if all(targets) and len(generated) >= 2:
        real = torch.stack([to_tensor(read_rgb(manifest.parent / t, f"{manifest}: target")) for t in targets])
        quality = cast_quality(judges["detector"], torch.stack([image for _, image in generated]), real,
                               [record["expected"]["count"] for record, _ in generated])
        out["frechet_judge"] = quality["frechet_judge"]
    return out, scores
