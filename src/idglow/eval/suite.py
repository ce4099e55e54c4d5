"""``idglow eval``: a folder of generations + its benchmark manifest -> metrics (docs/design.md §6).

Per image, with any face backend: detect, embed, Hungarian-match to the references; FaceSim (raw and
÷ mu_real, by group size), ID-Conf, count accuracy, identity-swap rate (references are listed left to
right), an artifact score. With the ``synth`` backend also the cast judges' child / mini-adult rates
(age task), leakage and colour accuracy (text alignment: the prompt's clothing colour on the right
person), and the Fréchet distance in judge features to the benchmark's true renders.

A generation is ``<record id>.png`` (``idglow generate --benchmark`` writes them so). A record with no
image is an error (or, with ``skip_missing``, a counted skip); an unreadable image is an error naming
the file (or, with ``skip_bad``, a counted skip) — never a silently wrong score.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from idglow.cast.crops import to_tensor
from idglow.data.images import read_rgb
from idglow.data.manifest import ManifestError, load_manifest
from idglow.eval.facesim import id_confusion, identified, identity_gallery, match_similarity, swapped
from idglow.faces import FaceBackend, NoFaceError


class GenerationsError(ValueError):
    """Generations that do not match their benchmark manifest."""


def pair_generations(folder: Path, records: list[dict], skip_missing: bool,
                     check_prompts: bool = True) -> tuple[list[tuple[dict, Path]], list[str]]:
    """``(record, image path)`` for each record; the ids without an image.

    Raises:
        GenerationsError: images missing (unless ``skip_missing``), or a sidecar whose prompt differs
            from the record's (the folder was generated from another manifest; ``check_prompts=False``
            when the prompts were rewritten on purpose, as ``idglow prompts refine`` does).
    """
    if not folder.is_dir():
        raise GenerationsError(f"generations: {folder} is not a folder")
    pairs, missing = [], []
    for record in records:
        image = folder / f"{record['id']}.png"
        if not image.is_file():
            missing.append(record["id"])
            continue
        sidecar = image.with_suffix(".json")
        if check_prompts and sidecar.is_file():
            prompt = json.loads(sidecar.read_text()).get("prompt")
            if prompt is not None and prompt != record["prompt"]:
                raise GenerationsError(f"{sidecar}: prompt {prompt!r} differs from the manifest's "
                                       f"{record['prompt']!r} (line {record['_line']}): generated from another benchmark?")
        pairs.append((record, image))
    if missing and not skip_missing:
        raise GenerationsError(f"generations: {len(missing)} of {len(records)} records have no image in {folder} "
                               f"(first: {missing[0]}.png); generate them or pass --skip-missing")
    if not pairs:
        raise GenerationsError(f"generations: none of the {len(records)} records has an image in {folder}")
    return pairs, missing


def identity_scores(backend: FaceBackend, image: np.ndarray, references: np.ndarray, expected_count: int,
                    gallery: np.ndarray | None = None, truth: np.ndarray | None = None) -> dict:
    """Backend-agnostic scores of one image against its reference embeddings [N, D]; with the benchmark's
    identity ``gallery`` [G, D] and each reference's row in it (``truth`` [N]), also identification."""
    found = backend.faces(image)
    sim = backend.similarity(references, found.embeddings)
    matched, index = match_similarity(sim)
    hits = None
    if gallery is not None:
        to_gallery = backend.similarity(found.embeddings, gallery) if len(found) else np.zeros((0, len(gallery)))
        hits = identified(to_gallery, index, truth)
    swaps = swapped(index, (found.boxes[:, 0] + found.boxes[:, 2]) / 2)
    n = len(references)
    confidence = found.scores[index[index >= 0]] if len(found) else np.zeros(0)
    return {
        "size": n, "faces": len(found), "count_ok": float(len(found) == expected_count),
        "facesim": float(matched.mean()), "facesim_per_ref": matched.round(4).tolist(),
        "id_conf": float(id_confusion(sim).mean()),
        "swaps": None if swaps is None else int(swaps.sum()),
        "swapped_slots": [] if swaps is None else np.flatnonzero(swaps).tolist(),
        # the face each reference was matched to, as a box in pixels (None: unmatched): the report's face pairs
        "matched_boxes": [None if i < 0 else [round(float(v), 1) for v in found.boxes[i][:4]] for i in index],
        "_confidence": float(confidence.mean()) if len(confidence) else 0.0,
        **({} if hits is None else {"identified": int(hits.sum()), "identified_slots": np.flatnonzero(hits).tolist(),
                                    "gallery": len(gallery)}),
    }


def artifact_score(score: dict) -> float:
    """0 (clean) .. 1: half the relative face-count error (duplicated or missing people), half the
    missing detector confidence of the matched faces. Meaningful for backends scoring in [0, 1]."""
    count_error = min(1.0, abs(score["faces"] - score["size"]) / max(score["size"], 1))
    return 0.5 * count_error + 0.5 * (1.0 - min(1.0, max(0.0, score["_confidence"])))


def summarise_identity(scores: list[dict], mu_real: float | None) -> dict:
    """Benchmark-level identity metrics from :func:`identity_scores` results."""
    by_size = defaultdict(list)
    for s in scores:
        by_size[s["size"]].append(s["facesim"])
    ordered = [s for s in scores if s["swaps"] is not None]
    facesim = float(np.mean([s["facesim"] for s in scores]))
    with_gallery = [s for s in scores if "identified" in s]
    refs = sum(s["size"] for s in with_gallery)
    return {
        "images": len(scores),
        "facesim": facesim,
        "facesim_norm": facesim / mu_real if mu_real else None,
        "mu_real": mu_real,
        "facesim_by_size": {str(k): float(np.mean(v)) for k, v in sorted(by_size.items())},
        "id_conf": float(np.mean([s["id_conf"] for s in scores])),
        "count_accuracy": float(np.mean([s["count_ok"] for s in scores])),
        "swap_rate": sum(s["swaps"] for s in ordered) / sum(s["size"] for s in ordered) if ordered else None,
        "swap_images": len(ordered),
        "artifact_score": float(np.mean([artifact_score(s) for s in scores])),
        # top-1 among every identity of the benchmark, per reference (an unmatched reference is not identified)
        "identification": sum(s["identified"] for s in with_gallery) / refs if refs else None,
        "identification_chance": 1.0 / with_gallery[0]["gallery"] if with_gallery else None,
    }


def _reference_embeddings(backend: FaceBackend, manifest: Path, record: dict, cache: dict[str, np.ndarray]) -> np.ndarray:
    embeddings = []
    for k, ref in enumerate(record["refs"]):
        if ref not in cache:
            where = f"{manifest}:{record['_line']}: refs[{k}]"
            try:
                cache[ref] = backend.reference(read_rgb(manifest.parent / ref, where), where)
            except NoFaceError as err:
                raise ManifestError(str(err)) from None
        embeddings.append(cache[ref])
    return np.stack(embeddings)


def identity_keys(record: dict) -> list:
    """Who each reference of a benchmark record is: the cast's ``expected.identities``, else the reference file
    (photo benchmarks built by ``idglow bench build`` use one crop per person)."""
    ids = record.get("expected", {}).get("identities")
    return list(ids) if ids is not None and len(ids) == len(record["refs"]) else list(record["refs"])


def benchmark_gallery(backend: FaceBackend, manifest: Path, records: list[dict],
                      cache: dict[str, np.ndarray]) -> tuple[dict, np.ndarray]:
    """The identity gallery of a benchmark (:func:`idglow.eval.facesim.identity_gallery` over every reference of
    every record): ``({identity key: row}, gallery [G, D])``."""
    keys, rows = [], []
    for record in records:
        keys += identity_keys(record)
        rows.append(_reference_embeddings(backend, manifest, record, cache))
    identities, gallery = identity_gallery(keys, np.concatenate(rows))
    return {key: i for i, key in enumerate(identities)}, gallery.astype(np.float32)


def score_folder(folder: Path, manifest: Path, backend: FaceBackend, skip_missing: bool = False, skip_bad: bool = False,
                 progress: bool = True, check_prompts: bool = True,
                 ids: set[str] | None = None) -> tuple[list[dict], list[torch.Tensor], dict]:
    """Scores of every generation (of the records named in ``ids``, when given); the generated images as
    tensors (for cast extras); skip counts."""
    everything = load_manifest(manifest, "benchmark")
    records = [r for r in everything if ids is None or r["id"] in ids]
    pairs, missing = pair_generations(folder, records, skip_missing, check_prompts)
    cache: dict[str, np.ndarray] = {}
    rows, gallery = benchmark_gallery(backend, manifest, everything, cache)  # all identities, whatever was generated
    scores, images, bad = [], [], []
    for record, path in tqdm(pairs, desc=f"eval {manifest.stem}", disable=not progress):
        try:
            image = read_rgb(path, f"generations: {path}")
        except ManifestError:
            if not skip_bad:
                raise
            bad.append(path.name)
            continue
        refs = _reference_embeddings(backend, manifest, record, cache)
        truth = np.array([rows[key] for key in identity_keys(record)])
        score = identity_scores(backend, image, refs, record.get("expected", {}).get("count", len(refs)), gallery, truth)
        scores.append({"id": record["id"], "task": record["task"], **score})
        images.append((record, to_tensor(image)))
    if not scores:
        raise GenerationsError(f"generations: no readable image in {folder}")
    return scores, images, {"missing": len(missing), "missing_ids": missing[:20], "unreadable": len(bad), "unreadable_files": bad[:20]}
