"""``idglow pairs build``: preference pairs for DPO, sampled from an SFT model and ranked by group-level scores.

For each training scene (prompt + references of training identities), sample K candidates with
different seeds, score every subject of every candidate (:mod:`idglow.eval.group_score`), and keep the
best and worst candidate as a pair when their group scores differ by ``min_gap``. Pair ``weight`` is
the gap over the mean kept gap (mean weight 1); ``margin`` is ``margin_scale * gap``.

Output folder: ``candidates/`` (all K images per scene), ``refs/`` (copies of the references, so the
folder is self-contained), ``scored.jsonl`` (one line per finished scene: resuming skips these),
``pairs.jsonl`` (the preference manifest, docs/design.md §7) and ``build.json`` (counts and settings).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from idglow.cast.crops import to_tensor, to_uint8
from idglow.cast.judge_training import load_judges
from idglow.data.images import read_rgb
from idglow.data.manifest import ManifestError, evenly_spread, load_manifest, read_lines
from idglow.eval.group_score import PairScoring, component_gaps, group_score, subject_scores
from idglow.faces.identity_loss import face_embeddings
from idglow.utils.defaults import JUDGES
from idglow.utils.io import atomic_write, open_append_log, read_append_log


@dataclasses.dataclass
class PairsOptions:
    """What ``idglow pairs build`` samples."""

    candidates: int = 4
    items: int | None = None
    seed: int = 0
    steps: int = 20
    id_guidance: float = 1.0
    batch: int = 8

    def validate(self) -> None:
        if self.candidates < 2:
            raise ValueError(f"candidates: need at least 2 per scene to make a pair, got {self.candidates}")
        if self.items is not None and self.items < 1:
            raise ValueError(f"items: must be >= 1, got {self.items}")
        if self.steps < 1 or self.batch < 1:
            raise ValueError("steps and batch must be >= 1")


def manifest_identities(path: str | Path) -> set[int]:
    """Identities named in an SFT manifest (``subjects[].attributes.identity``) or a benchmark (``expected.identities``)."""
    ids: set[int] = set()
    for number, line in enumerate(read_lines(Path(path)), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ManifestError(f"{path}:{number}: record: invalid JSON ({err.msg} at column {err.colno})") from None
        ids.update(s.get("attributes", {}).get("identity") for s in record.get("subjects", []))
        ids.update(record.get("expected", {}).get("identities", []))
    ids.discard(None)
    return ids


def training_items(manifests: list[str | Path], heldout: list[str | Path], limit: int | None,
                   skip_heldout: bool = False) -> tuple[list[dict], dict]:
    """SFT records of ``manifests`` whose identities appear in no ``heldout`` manifest.

    Returns:
        ``(items, counts)``; each item is ``{"id", "source", "manifest", "record"}``, ``limit`` of them
        evenly spread over the records.

    Raises:
        ManifestError: a record with a held-out identity (file, line, field), unless ``skip_heldout``.
    """
    excluded = set().union(*(manifest_identities(m) for m in heldout)) if heldout else set()
    items, counts, sources = [], {"heldout_skipped": 0, "without_identity": 0}, {}
    for manifest in map(Path, manifests):
        for record in load_manifest(manifest, "sft"):
            where = f"{manifest}:{record['_line']}"
            identities = [s.get("attributes", {}).get("identity") for s in record["subjects"]]
            counts["without_identity"] += None in identities
            clash = [i for i, ident in enumerate(identities) if ident is not None and ident in excluded]
            if clash and not skip_heldout:
                raise ManifestError(f"{where}: subjects[{clash[0]}].attributes.identity: identity {identities[clash[0]]} "
                                    "is held out for evaluation; pairs must use training identities only")
            if clash:
                counts["heldout_skipped"] += 1
                continue
            name = record.get("id") or f"{manifest.stem}-{record['_line']:06d}"
            if name in sources:  # candidates and references are filed under it: a repeat would overwrite them
                raise ManifestError(f"{where}: id: {name!r} repeats the scene of {sources[name]}")
            sources[name] = where
            items.append({"id": name, "source": where, "manifest": manifest, "record": record})
    if counts["heldout_skipped"]:
        warnings.warn(f"skipped {counts['heldout_skipped']} scene(s) with held-out identities", stacklevel=2)
    if not items:
        raise ValueError("manifests: no training scenes left to build pairs from")
    return evenly_spread(items, limit), counts


def _reference_crops(item: dict) -> torch.Tensor:
    manifest, record = item["manifest"], item["record"]
    return torch.stack([to_tensor(read_rgb(manifest.parent / s["ref"], f"{item['source']}: subjects[{i}].ref"))
                        for i, s in enumerate(record["subjects"])])


@torch.no_grad()
def calibration(items: list[dict], encoder: torch.nn.Module) -> dict[str, float]:
    """Per task, the encoder's mean cosine between each subject's reference and its face in the true
    training render (at the ground-truth box): the ``mu`` that identity calibration aims at."""
    sums: dict[str, list[float]] = {}
    for item in items:
        record = item["record"]
        image = to_tensor(read_rgb(item["manifest"].parent / record["image"], f"{item['source']}: image"))
        refs = encoder(_reference_crops(item))
        boxes = torch.tensor([s["box"] for s in record["subjects"]], dtype=torch.float32)
        faces = face_embeddings(image[None], boxes, torch.zeros(len(boxes), dtype=torch.long), encoder)
        sums.setdefault(record["task"], []).extend((faces * refs).sum(-1).tolist())
    return {task: float(np.mean(values)) for task, values in sums.items()}


def _done(scored: Path) -> dict[str, dict]:
    """Finished scenes of an earlier run (a torn last line, from a kill mid-write, is ignored)."""
    return {entry["id"]: entry for entry in read_append_log(scored)}


def _copy_refs(item: dict, out: Path) -> list[str]:
    names = []
    for i, subject in enumerate(item["record"]["subjects"]):
        name = f"refs/{item['id']}_{i}.png"
        if not (out / name).is_file():
            atomic_write(out / name, lambda p, s=subject: shutil.copyfile(item["manifest"].parent / s["ref"], p))
        names.append(name)
    return names


class CastScorer:
    """Scores candidates with the cast's judges (:func:`idglow.eval.group_score.subject_scores`): the cast's runs."""

    name = "cast"

    def __init__(self, judges: str | Path = JUDGES):
        self.judges = load_judges(judges)

    def calibrate(self, items: list[dict]) -> dict[str, float]:
        return calibration(items, self.judges["encoder"])

    def score(self, item: dict, images: torch.Tensor, mu: float) -> list[dict]:
        """Per candidate of ``images`` [K, 3, H, W] in [-1, 1]: its per-subject scores."""
        record = item["record"]
        ref_emb = self.judges["encoder"](_reference_crops(item))
        ages = [s.get("attributes", {}).get("age", "child" if record["task"] == "age" else "adult") for s in record["subjects"]]
        clothing = [s.get("attributes", {}).get("clothing", "") for s in record["subjects"]]
        return [subject_scores(image, ref_emb, ages, clothing, self.judges, mu) for image in images]


class PhotoScorer:
    """Scores candidates of a photo run with a real face backend (:mod:`idglow.eval.photo_score`): detection
    confidence, no-reference face quality, identity calibrated to the photos' own true scenes."""

    name = "photo"

    def __init__(self, backend: str = "dlib", model_dir: str | None = None):
        from idglow.faces import load_backend

        self.backend = load_backend(backend, model_dir=model_dir)

    def _references(self, item: dict) -> np.ndarray:
        manifest, record = item["manifest"], item["record"]
        return np.stack([self.backend.reference(read_rgb(manifest.parent / s["ref"], f"{item['source']}: subjects[{i}].ref"),
                                                f"{item['source']}: subjects[{i}].ref")
                         for i, s in enumerate(record["subjects"])])

    def calibrate(self, items: list[dict]) -> dict[str, float]:
        """Per task, the mean matched similarity of the true training scenes to their references (at their stored size);
        the backend's same-person level (0.5) where it finds no face in them, with a warning."""
        from idglow.eval.photo_score import calibrate

        mu = {}
        for task in sorted({item["record"]["task"] for item in items}):
            scenes = [(read_rgb(i["manifest"].parent / i["record"]["image"], f"{i['source']}: image"), self._references(i))
                      for i in items if i["record"]["task"] == task]
            mu[task], measured = calibrate(scenes, self.backend, fallback=0.5)
            if not measured:
                warnings.warn(f"pairs: the {self.backend.name} backend finds no face in the true {task} scenes at their "
                              "size; identity is calibrated to 0.5, its same-person level", stacklevel=2)
        return mu

    def score(self, item: dict, images: torch.Tensor, mu: float) -> list[dict]:
        from idglow.eval.photo_score import photo_subject_scores

        refs = self._references(item)
        return [photo_subject_scores(to_uint8(image), refs, self.backend, mu) for image in images]


def _score_item(item: dict, images: torch.Tensor, seeds: list[int], out: Path, scorer, mu: float) -> dict:
    """Write and score the K candidates [K, 3, H, W] of one scene; the line that goes to scored.jsonl."""
    record = item["record"]
    candidates = []
    for j, (image, seed, scores) in enumerate(zip(images, seeds, scorer.score(item, images, mu))):
        name = f"candidates/{item['id']}_c{j}.png"
        atomic_write(out / name, lambda p, im=image: Image.fromarray(to_uint8(im)).save(p, format="PNG"))
        candidates.append({"image": name, "seed": seed, **scores})
    identities = [s.get("attributes", {}).get("identity") for s in record["subjects"]]
    return {"id": item["id"], "scorer": scorer.name, "source": item["source"], "prompt": record["prompt"], "task": record["task"],
            "refs": _copy_refs(item, out), "identities": identities, "candidates": candidates}


def select_pairs(scored: list[dict], scoring: PairScoring) -> tuple[list[dict], dict]:
    """Best vs worst candidate of each scene, kept when the group-score gap reaches ``min_gap``.

    Returns:
        ``(preference records, stats)``; weights are gaps over the mean kept gap, margins ``margin_scale * gap``.
    """
    pairs = []
    for entry in scored:
        ranked = sorted(entry["candidates"], key=lambda c: group_score(c, scoring))
        loser, winner = ranked[0], ranked[-1]
        high, low = group_score(winner, scoring), group_score(loser, scoring)
        if high - low < scoring.min_gap:
            continue
        pairs.append({"prompt": entry["prompt"], "task": entry["task"], "refs": entry["refs"],
                      "winner": winner["image"], "loser": loser["image"],
                      "scores": {"winner": high, "loser": low, "gap": high - low,
                                 "gaps": component_gaps(winner, loser, scoring),
                                 "identities": entry["identities"], "source": entry["source"], "id": entry["id"]}})
    mean_gap = float(np.mean([p["scores"]["gap"] for p in pairs])) if pairs else 0.0
    for p in pairs:
        p["weight"] = p["scores"]["gap"] / mean_gap if mean_gap > 0 else 1.0  # all ties (min_gap 0): equal weights
        p["margin"] = scoring.margin_scale * p["scores"]["gap"]
    return pairs, {"scenes": len(scored), "pairs": len(pairs), "dropped_small_gap": len(scored) - len(pairs),
                   "mean_gap": mean_gap}


def build_pairs(run: str | Path, manifests: list[str | Path], out: str | Path, options: PairsOptions,
                scoring: PairScoring, heldout: list[str | Path], judges: str | Path = JUDGES,
                skip_heldout: bool = False, progress: bool = True, scorer: CastScorer | PhotoScorer | None = None,
                device: torch.device | str = "cpu") -> dict:
    """Sample, score and pair candidates (see the module docstring); resumable. Returns build.json's content.

    ``scorer``: :class:`CastScorer` on ``judges`` (the default) or :class:`PhotoScorer` for a run trained on photos.
    ``device``: where the candidates are sampled (they are scored on the CPU)."""
    from idglow.generate.pipeline import IdGlowPipeline
    from idglow.runs.load import check_run

    options.validate()
    scoring.validate()
    check_run(run)
    out = Path(out)
    items, counts = training_items(manifests, heldout, options.items, skip_heldout)
    scorer = scorer or CastScorer(judges)
    mu = scorer.calibrate(items)
    (out / "candidates").mkdir(parents=True, exist_ok=True)
    (out / "refs").mkdir(exist_ok=True)
    done = _done(out / "scored.jsonl")
    other = {entry.get("scorer", "cast") for entry in done.values()} - {scorer.name}
    if other:
        raise ValueError(f"{out / 'scored.jsonl'}: scored by the {other.pop()} scorer; resuming with the {scorer.name} "
                         "scorer would mix scales: use a new --out folder")
    height, width = read_rgb(items[0]["manifest"].parent / items[0]["record"]["image"], items[0]["source"]).shape[:2]
    pipe = IdGlowPipeline.from_run(run, height, width, device=device)
    todo = [(k, item) for k, item in enumerate(items) if item["id"] not in done]
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="pairs: sample and score", disable=not progress)
    with open_append_log(out / "scored.jsonl") as log:
        for start in range(0, len(todo), options.batch):
            chunk = todo[start : start + options.batch]
            seeds = [[options.seed + k * options.candidates + j for j in range(options.candidates)] for k, _ in chunk]
            images = pipe.sample([item["record"]["prompt"] for _, item in chunk for _ in range(options.candidates)],
                          [_reference_crops(item) for _, item in chunk for _ in range(options.candidates)],
                          [item["record"]["task"] for _, item in chunk for _ in range(options.candidates)],
                          steps=options.steps, generator=[torch.Generator().manual_seed(s) for row in seeds for s in row],
                          id_guidance=options.id_guidance)
            for i, (_, item) in enumerate(chunk):
                k = options.candidates
                entry = _score_item(item, images[i * k : (i + 1) * k], seeds[i], out, scorer, mu[item["record"]["task"]])
                log.write(json.dumps(entry) + "\n")
                log.flush()
                done[item["id"]] = entry
            bar.update(len(chunk))
    bar.close()
    scored = [done[item["id"]] for item in items]
    pairs, stats = select_pairs(scored, scoring)
    atomic_write(out / "pairs.jsonl", lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in pairs)))
    summary = {"run": str(run), "scorer": scorer.name, "manifests": [str(m) for m in manifests], "heldout": [str(m) for m in heldout],
               **counts, **stats, "mu": mu, "options": dataclasses.asdict(options), "scoring": dataclasses.asdict(scoring)}
    atomic_write(out / "build.json", lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    return summary
