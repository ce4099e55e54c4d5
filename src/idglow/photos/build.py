"""``idglow data build --photos DIR``: a folder of real photos turned into SFT and benchmark manifests.

Input (``DIR``)::

    people/<name>/*.jpg   photos of one person each (their largest face is theirs): where references come from
    groups/*.jpg          group photos (one or more of those people): the training scenes and benchmark records

Every face of a group photo is detected and embedded by a face backend (dlib offline; insightface with a model pack)
and assigned to a person by :func:`idglow.photos.assign.assign_faces`; a photo with a face that is nobody's (a
stranger, with ``unknown_faces: skip``), ambiguous, cut by the crop, too small to see, or with more people than the model
takes is skipped and counted under its reason (``build.json`` lists the files). Each subject's reference is a head shot
from one of *that person's own photos* (never the group photo itself). Scenes are centre-cropped to the target aspect
and resized; boxes follow. Captions: the rules synthesizer (positions left to right); ``idglow prompts caption`` on the
written manifest rewrites them with an OpenAI-compatible VLM.

Output (``OUT``): ``images/``, ``refs/<name>/``, ``sft.jsonl`` (training scenes), ``bench.jsonl`` (held-out group
photos: a benchmark with ``expected.count``/``identities``/``positions``/``boxes``/``target``), ``build.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from idglow.data.images import IMAGE_SUFFIXES, read_rgb
from idglow.data.manifest import ManifestError
from idglow.eval.bench_build import square_crop
from idglow.faces.base import FaceBackend
from idglow.photos.assign import assign_faces, positions
from idglow.prompts.rules import synthesize
from idglow.prompts.scene import SceneDescription, SubjectDescription
from idglow.utils.config import option
from idglow.utils.io import atomic_write

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclasses.dataclass
class PhotoBuildOptions:
    """How ``idglow data build --photos`` turns photos into manifests."""

    height: int = option(512, "scene height in pixels (the model's training size)")
    width: int = option(512, "scene width in pixels")
    ref_size: int = option(160, "reference head shots are this many pixels square")
    ref_margin: float = option(0.6, "head shot margin around the face box, as a fraction of the face width")
    min_similarity: float = option(0.5, "a face is a person's at this similarity or more (dlib: 0.5 = its 0.6 distance)")
    margin: float = option(0.1, "a face is ambiguous when another person (or another face) is this close to its match")
    near_copy: float = option(0.95, "a person photo whose face is this similar to the group photo's face is a copy of "
                              "the same shot: used as the reference only when the person has no other photo")
    min_face: int = option(8, "skip a photo whose face would be smaller than this many pixels wide in the scene")
    max_people: int = option(4, "skip group photos with more people (the model's identity.max_refs)")
    unknown_faces: Literal["skip", "ignore"] = option("skip", "a group photo with a face that is nobody's: skip (counted) or ignore the face")
    bench_fraction: float = option(0.2, "fraction held out as the benchmark (seeded): of the group photos, or of the people")
    bench_split: Literal["photos", "people"] = option(
        "photos", "photos: hold out group photos (their people also appear in training); people: hold out people, so "
        "the benchmark shows people never seen in training (a photo mixing both sides is skipped, counted)")
    seed: int = option(0, "seed of the benchmark split and of the reference choice")
    on_bad_image: Literal["error", "skip"] = option("error", "an unreadable photo or a person photo without a face: error, or skip (counted)")

    def validate(self) -> None:
        if min(self.height, self.width, self.ref_size, self.max_people, self.min_face) < 1:
            raise ValueError("height, width, ref_size, min_face and max_people must be >= 1")
        if not 0.0 <= self.bench_fraction < 1.0:
            raise ValueError(f"bench_fraction: must lie in [0, 1), got {self.bench_fraction}")


@dataclasses.dataclass
class PersonPhoto:
    """One photo of a person: where it is, its face box [4] and unit identity embedding [D]."""

    path: Path
    box: np.ndarray
    embedding: np.ndarray


class Skips:
    """Counted, named skips: ``reason -> [file, ...]``, warned once each."""

    def __init__(self):
        self.files: dict[str, list[str]] = {}

    def add(self, reason: str, path: Path, why: str = "") -> None:
        self.files.setdefault(reason, []).append(str(path))
        warnings.warn(f"{path}: skipped ({reason}{': ' + why if why else ''})", stacklevel=3)

    def counts(self) -> dict[str, int]:
        return {reason: len(files) for reason, files in self.files.items()}


def _photos(folder: Path, root: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted; one resolving outside ``root`` (a link out) is an error."""
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    for path in found:
        if not path.resolve().is_relative_to(root.resolve()):
            raise ManifestError(f"{path}: resolves outside the photo folder {root} (to {path.resolve()}); refused")
    return found


def _read(path: Path, options: PhotoBuildOptions, skips: Skips) -> np.ndarray | None:
    try:
        return read_rgb(path, f"{path}: image")
    except ManifestError as err:
        if options.on_bad_image == "error":
            raise
        skips.add("unreadable", path, str(err).split(": ", 2)[-1])
        return None


def gallery(root: Path, backend: FaceBackend, options: PhotoBuildOptions, skips: Skips,
            progress: bool) -> dict[str, list[PersonPhoto]]:
    """``name -> photos`` of every person folder under ``root/people`` (each photo's largest face)."""
    people_dir = root / "people"
    if not people_dir.is_dir():
        raise ManifestError(f"{root}: no people/ folder (one folder of photos per person; see `idglow data build --help`)")
    people: dict[str, list[PersonPhoto]] = {}
    folders = sorted(p for p in people_dir.iterdir() if p.is_dir())
    for folder in tqdm(folders, desc="photos: people", disable=not progress):
        if not NAME.match(folder.name):
            raise ManifestError(f"{folder}: a person's folder name must be letters, digits, '.', '_' or '-' (it names files)")
        for path in _photos(folder, root):
            image = _read(path, options, skips)
            if image is None:
                continue
            found = backend.faces(image)
            if not len(found):
                if options.on_bad_image == "error":
                    raise ManifestError(f"{path}: no face found by the {backend.name} backend (a person's photo must show them)")
                skips.add("person_photo_without_face", path)
                continue
            largest = int(np.argmax((found.boxes[:, 2] - found.boxes[:, 0]) * (found.boxes[:, 3] - found.boxes[:, 1])))
            people.setdefault(folder.name, []).append(PersonPhoto(path, found.boxes[largest], found.embeddings[largest]))
    if not people:
        raise ManifestError(f"{people_dir}: no person with a usable photo")
    return people


def fit_to(image: np.ndarray, boxes: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre-crop ``image`` [H, W, 3] to the aspect ``height:width`` and resize it; ``(scene, boxes [F, 4] in the
    scene's pixels, the fraction [F] of each box's area that the crop kept)``."""
    h, w = image.shape[:2]
    crop_w, crop_h = (w, w * height / width) if w * height / width <= h else (h * width / height, h)
    x0, y0 = (w - crop_w) / 2, (h - crop_h) / 2
    scale = width / crop_w
    clipped = np.stack([np.clip(boxes[:, 0], x0, x0 + crop_w), np.clip(boxes[:, 1], y0, y0 + crop_h),
                        np.clip(boxes[:, 2], x0, x0 + crop_w), np.clip(boxes[:, 3], y0, y0 + crop_h)], 1)
    area = lambda b: np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)  # noqa: E731
    kept = area(clipped) / np.maximum(area(boxes), 1e-9)
    scene_boxes = (clipped - np.array([x0, y0, x0, y0])) * scale
    box = (round(x0), round(y0), round(x0 + crop_w), round(y0 + crop_h))
    scene = np.array(Image.fromarray(image).crop(box).resize((width, height), Image.Resampling.LANCZOS))
    return scene, np.round(scene_boxes, 1), kept


def _similarity_to_people(backend: FaceBackend, embeddings: np.ndarray, people: dict[str, list[PersonPhoto]]) -> np.ndarray:
    """[F, P]: each face's similarity to each person, the best over that person's photos."""
    return np.stack([backend.similarity(embeddings, np.stack([p.embedding for p in photos])).max(1)
                     for photos in people.values()], 1)


def group_scene(path: Path, image: np.ndarray, backend: FaceBackend, people: dict[str, list[PersonPhoto]],
                options: PhotoBuildOptions, skips: Skips) -> dict | None:
    """One group photo as a scene: ``{"scene" [H, W, 3], "boxes" [N, 4], "names", "embeddings" [N, D]}`` (people left
    to right), or None when it is skipped (counted under its reason)."""
    found = backend.faces(image)
    if not len(found):
        return skips.add("no_face", path)
    person, reasons = assign_faces(_similarity_to_people(backend, found.embeddings, people), options.min_similarity,
                                   options.margin)
    if "ambiguous" in reasons:
        return skips.add("ambiguous", path, f"{reasons.count('ambiguous')} face(s) close to two people")
    if "unknown" in reasons and options.unknown_faces == "skip":
        return skips.add("unknown_face", path, f"{reasons.count('unknown')} face(s) of nobody in people/")
    keep = np.flatnonzero(person >= 0)
    if not len(keep):
        return skips.add("nobody_known", path)
    if len(keep) > options.max_people:
        return skips.add("too_many_people", path, f"{len(keep)} > max_people {options.max_people}")
    scene, boxes, kept = fit_to(image, found.boxes[keep], options.height, options.width)
    if (kept < 0.75).any():
        return skips.add("face_cut", path, "the crop to the scene's aspect cuts a face")
    if ((boxes[:, 2] - boxes[:, 0]) < options.min_face).any():
        return skips.add("face_too_small", path, f"a face under {options.min_face} px wide in the scene")
    order = np.argsort((boxes[:, 0] + boxes[:, 2]) / 2)
    names = list(people)
    return {"scene": scene, "boxes": boxes[order], "names": [names[person[keep[i]]] for i in order],
            "embeddings": found.embeddings[keep[order]]}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reference(photos: list[PersonPhoto], face: np.ndarray, group: Path, rng: np.random.Generator, out: Path,
               backend: FaceBackend, options: PhotoBuildOptions) -> tuple[str, PersonPhoto]:
    """A head shot of the person from one of their own photos, written once under ``out/refs/<name>/``; ``(its path
    relative to out, the photo)``. Never the group photo's own file; a photo whose face is a near copy of the face in
    the group photo (similarity >= ``near_copy``: the same shot pasted or re-saved) only when nothing else is left."""
    group_digest = _digest(group)
    choices = [p for p in photos if _digest(p.path) != group_digest]
    if not choices:
        raise ManifestError(f"{group}: its only photo of {photos[0].path.parent.name} is this group photo itself; add "
                            f"another photo to {photos[0].path.parent}")
    similar = backend.similarity(face[None], np.stack([p.embedding for p in choices]))[0]
    choices = [p for p, s in zip(choices, similar) if s < options.near_copy] or choices
    photo = choices[int(rng.integers(len(choices)))]
    name = f"refs/{photo.path.parent.name}/{photo.path.stem}.png"
    if not (out / name).is_file():
        crop = square_crop(read_rgb(photo.path, f"{photo.path}: image"), photo.box, 1 + 2 * options.ref_margin,
                           options.ref_size)
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out / name, lambda p: Image.fromarray(crop).save(p, format="PNG"))
    return name, photo


def _records(stem: str, scene: dict, refs: list[str]) -> tuple[dict, dict]:
    """The SFT record and the benchmark record of one scene."""
    where = positions(len(scene["names"]))
    prompt = synthesize(SceneDescription([SubjectDescription(position=p) for p in where]))
    boxes = [[float(v) for v in box] for box in scene["boxes"]]
    image = f"images/{stem}.png"
    sft = {"id": stem, "image": image, "prompt": prompt, "task": "group",
           "subjects": [{"ref": r, "box": b, "attributes": {"identity": n, "position": p}}
                        for r, b, n, p in zip(refs, boxes, scene["names"], where)]}
    bench = {"id": stem, "prompt": prompt, "task": "group", "refs": refs,
             "expected": {"count": len(refs), "identities": scene["names"], "positions": where, "boxes": boxes,
                          "target": image}}
    return sft, bench


def build_photo_dataset(root: str | Path, out: str | Path, backend: FaceBackend, options: PhotoBuildOptions,
                        progress: bool = True) -> dict:
    """Write ``out/{images,refs}``, ``sft.jsonl``, ``bench.jsonl`` and ``build.json`` from the photos under ``root``
    (see the module docstring); returns build.json's content.

    Raises:
        ManifestError: no people/ or groups/ folder, a bad folder name, a link out of ``root``, an unreadable photo or
            a person photo without a face (with ``on_bad_image: error``), naming the file; no usable group photo.
    """
    options.validate()
    root, out = Path(root), Path(out)
    if not (root / "groups").is_dir():
        raise ManifestError(f"{root}: no groups/ folder (the group photos; see `idglow data build --help`)")
    skips = Skips()
    people = gallery(root, backend, options, skips, progress)
    scenes, groups = {}, _photos(root / "groups", root)
    for path in tqdm(groups, desc="photos: groups", disable=not progress):
        image = _read(path, options, skips)
        scene = None if image is None else group_scene(path, image, backend, people, options, skips)
        if scene is not None:
            if path.stem in scenes:
                raise ManifestError(f"{path}: its name repeats {scenes[path.stem]['path']} (ids are file stems)")
            scenes[path.stem] = {**scene, "path": path}
    if not scenes:
        raise ManifestError(f"{root / 'groups'}: no usable group photo (skipped: {skips.counts()})")
    summary = _write(scenes, people, out, backend, options, skips)
    summary.update(group_photos=len(groups), skipped=skips.counts(), skipped_files=skips.files)
    atomic_write(out / "build.json", lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    return summary


def held_out(scenes: dict, people: dict, options: PhotoBuildOptions, rng: np.random.Generator,
             skips: Skips) -> set[str]:
    """The benchmark's scene stems; with ``bench_split: people``, scenes mixing held-out and training people are removed
    from ``scenes`` (counted as ``mixed_split``)."""
    stems = sorted(scenes)
    if options.bench_split == "photos":
        return set(rng.permutation(stems)[: round(options.bench_fraction * len(stems))].tolist()) if len(stems) > 1 else set()
    names = sorted(people)
    held_people = set(rng.permutation(names)[: round(options.bench_fraction * len(names))].tolist())
    for stem in stems:
        inside = {name in held_people for name in scenes[stem]["names"]}
        if inside == {True, False}:
            skips.add("mixed_split", scenes.pop(stem)["path"], "held-out and training people in one photo")
    return {stem for stem in scenes if scenes[stem]["names"][0] in held_people}


def _write(scenes: dict, people: dict, out: Path, backend: FaceBackend, options: PhotoBuildOptions,
           skips: Skips) -> dict:
    """Images, references and both manifests of the kept ``scenes``; the summary (counts, the photos' mu_real)."""
    rng = np.random.default_rng(options.seed)
    held = held_out(scenes, people, options, rng, skips)
    stems = sorted(scenes)
    if not stems:
        raise ManifestError(f"no usable group photo left after the split (skipped: {skips.counts()})")
    (out / "images").mkdir(parents=True, exist_ok=True)
    sft, bench, similarities = [], [], []
    for stem in stems:
        scene = scenes[stem]
        refs = [_reference(people[name], face, scene["path"], rng, out, backend, options)
                for name, face in zip(scene["names"], scene["embeddings"])]
        atomic_write(out / "images" / f"{stem}.png", lambda p, s=scene: Image.fromarray(s["scene"]).save(p, format="PNG"))
        record, benchmark = _records(stem, scene, [name for name, _ in refs])
        (bench if stem in held else sft).append(benchmark if stem in held else record)
        if stem not in held:  # the photos' own mu_real: a reference against the person's face in a true photo
            similarities += [float(backend.similarity(face[None], photo.embedding[None])[0, 0])
                             for face, (_, photo) in zip(scene["embeddings"], refs)]
    write_lines = lambda path, rows: atomic_write(path, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in rows)))  # noqa: E731
    if sft:
        write_lines(out / "sft.jsonl", sft)
    if bench:
        write_lines(out / "bench.jsonl", bench)
    return {"people": {name: len(photos) for name, photos in people.items()}, "scenes": len(sft), "benchmark": len(bench),
            "benchmark_people": sorted({n for r in bench for n in r["expected"]["identities"]}),
            "backend": backend.name, "mu_real": float(np.mean(similarities)) if similarities else None,
            "options": dataclasses.asdict(options)}
