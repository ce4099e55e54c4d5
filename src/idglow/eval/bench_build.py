"""``idglow bench build``: group-fusion and age-group benchmark manifests from a folder of face photos.

Each photo is taken as one person (e.g. CelebA-HQ: one identity per image). Photos in which the
backend finds no face or several faces are rejected (counted and listed in ``build.json``); an
unreadable file is skipped the same way. Accepted faces are cropped square around the detection
(``expand`` x the box side) and saved under ``refs/``. Identity sets of sizes 2..4 are drawn without
repeating a person inside a set; their prompts place people left to right in reference order.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from idglow.data.images import IMAGE_SUFFIXES, read_rgb
from idglow.data.manifest import ManifestError
from idglow.faces import FaceBackend
from idglow.utils.io import atomic_write

POSITIONS = {2: ["on the left", "on the right"], 3: ["on the left", "in the middle", "on the right"],
             4: ["on the far left", "left of centre", "right of centre", "on the far right"]}
NUMBERS = {2: "two", 3: "three", 4: "four"}


def square_crop(image: np.ndarray, box: np.ndarray, expand: float, size: int) -> np.ndarray:
    """A square crop [size, size, 3] centred on ``box`` (x0, y0, x1, y1), side ``expand`` x the box's longer side."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = expand * max(box[2] - box[0], box[3] - box[1]) / 2
    crop = Image.fromarray(image).crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half)))
    return np.array(crop.resize((size, size), Image.BICUBIC))


def collect_faces(folder: Path, backend: FaceBackend, out: Path, expand: float, size: int,
                  progress: bool = True) -> tuple[list[str], dict[str, list[str]]]:
    """Crop the one face of every photo into ``out/refs``; returns accepted crop paths (relative to ``out``)
    and the rejected files by reason."""
    if not folder.is_dir():
        raise FileNotFoundError(f"faces: {folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"faces: {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    accepted, rejected = [], {"unreadable": [], "no face": [], "several faces": []}
    (out / "refs").mkdir(parents=True, exist_ok=True)
    for path in tqdm(files, desc="detect faces", disable=not progress):
        try:
            image = read_rgb(path, f"faces: {path}")
        except ManifestError:
            rejected["unreadable"].append(path.name)
            continue
        found = backend.faces(image)
        if len(found) != 1:
            rejected["no face" if not len(found) else "several faces"].append(path.name)
            continue
        name = f"refs/{path.stem}.png"
        crop = square_crop(image, found.boxes[0], expand, size)
        atomic_write(out / name, lambda p, c=crop: Image.fromarray(c).save(p, format="PNG"))
        accepted.append(name)
    return accepted, rejected


def identity_sets(people: list[str], sizes: list[int], per_size: int, seed: int) -> list[list[str]]:
    """``per_size`` sets of each size (distinct people within a set); sizes above the number of people are skipped."""
    rng = random.Random(seed)
    return [rng.sample(people, n) for n in sizes if n <= len(people) for _ in range(per_size)]


def benchmark_records(name: str, task: str, sets: list[list[str]]) -> list[dict]:
    """Benchmark-format records (docs/design.md §7) with left-to-right prompts."""
    records = []
    for k, refs in enumerate(sets):
        n = len(refs)
        who = "children" if task == "age" else "people"
        places = ", ".join(f"person {i + 1} {pos}" for i, pos in enumerate(POSITIONS[n]))
        prompt = f"a photo of {NUMBERS[n]} {who} standing side by side, {places}"
        if task == "age":
            prompt += ", each shown as a young child"
        records.append({"id": f"{name}-{k:06d}", "prompt": prompt, "task": task, "refs": refs,
                        "expected": {"count": n, "age": "child" if task == "age" else "adult", "positions": POSITIONS[n]}})
    return records


def build_benchmarks(faces: str | Path, out: str | Path, backend: FaceBackend, sizes: tuple[int, ...] = (2, 3, 4),
                     per_size: int = 50, expand: float = 1.6, size: int = 128, seed: int = 0, progress: bool = True) -> dict:
    """Write ``out/group-fusion.jsonl``, ``out/age-group.jsonl``, crops under ``out/refs`` and ``out/build.json``."""
    faces, out = Path(faces), Path(out)
    people, rejected = collect_faces(faces, backend, out, expand, size, progress)
    if len(people) < min(sizes):
        raise ValueError(f"faces: only {len(people)} usable photo(s) in {faces} (one face each); sets of "
                         f"{min(sizes)} need at least {min(sizes)}. Rejected: {json.dumps(rejected)}")
    summary = {"faces": str(faces), "backend": backend.name, "accepted": len(people),
               "rejected": {k: len(v) for k, v in rejected.items()}, "rejected_files": rejected, "manifests": {}}
    for name, task, salt in (("group-fusion", "group", 0), ("age-group", "age", 1)):
        records = benchmark_records(name, task, identity_sets(people, list(sizes), per_size, seed + salt))
        text = "".join(json.dumps(r) + "\n" for r in records)
        atomic_write(out / f"{name}.jsonl", lambda p, t=text: p.write_text(t))
        summary["manifests"][name] = len(records)
    atomic_write(out / "build.json", lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    return summary
