"""``idglow synth build``: SFT sets, benchmarks and mini-adult counterfactuals as manifests + PNGs.

Every sample is rendered from its own generator ``(seed, set, index)``, so the output does not
depend on how the work is split across processes. Manifests sit at the top of the output folder and
reference images below it (paths may not escape a manifest's folder).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from idglow.cast.config import SynthConfig, WorldConfig
from idglow.cast.crops import face_crops, to_tensor, to_uint8
from idglow.cast.scenes import POSITIONS, identities, sample_group, sample_portrait
from idglow.utils.config import to_dict
from idglow.utils.io import atomic_write

# set name -> (task, split, age of the target, face age of the target, stable code for seeding)
SETS = {
    "sft-group-train": ("group", "train", "adult", None, 1),
    "sft-age-train": ("age", "train", "child", None, 2),
    "sft-group-heldout": ("group", "heldout", "adult", None, 3),
    "sft-age-heldout": ("age", "heldout", "child", None, 4),
    "synth-group": ("group", "heldout", "adult", None, 5),
    "synth-age": ("age", "heldout", "child", None, 6),
    "mini-adults": ("age", "heldout", "child", "adult", 7),
}
BENCHMARKS = ("synth-group", "synth-age", "mini-adults")


def _save_png(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, compress_level=1)


def reference_crop(rng: np.random.Generator, identity, size: int) -> np.ndarray:
    """A reference of ``identity``: a fresh adult portrait (own pose, lighting, clothes), face-cropped."""
    portrait = sample_portrait(rng, identity)
    box = torch.tensor([portrait.boxes[0]])
    return to_uint8(face_crops(to_tensor(portrait.image)[None], box, size=size)[0])


def _render_sample(name: str, index: int, world: WorldConfig, seed: int, ref_size: int, out: Path, size: int | None) -> dict:
    task, split, age, face_age, code = SETS[name]
    rng = np.random.default_rng([seed, code, index])
    n = size if size is not None else int(rng.integers(1, world.max_people + 1))
    people = identities(world.seed, rng.choice(world.ids(split), size=n, replace=False))
    scene = sample_group(rng, people, age, world.width, world.height, face_age)
    stem = f"images/{name}/{index:06d}"
    _save_png(scene.image, out / f"{stem}.png")
    refs = []
    for k, identity in enumerate(people):
        _save_png(reference_crop(rng, identity, ref_size), out / f"{stem}_ref{k}.png")
        refs.append(f"{stem}_ref{k}.png")
    boxes = [[round(v, 2) for v in b] for b in scene.boxes]
    clothing = [p.appearance.clothing for p in scene.people]
    if name.startswith("sft-"):
        subjects = [
            {"ref": ref, "box": box, "attributes": {"identity": p.identity.id, "position": pos, "clothing": c, "age": age}}
            for ref, box, p, pos, c in zip(refs, boxes, scene.people, POSITIONS[n], clothing)
        ]
        return {"id": f"{name}-{index:06d}", "image": f"{stem}.png", "prompt": scene.caption, "task": task, "subjects": subjects}
    expected = {"count": n, "age": age, "identities": [p.id for p in people], "clothing": clothing,
                "positions": list(POSITIONS[n]), "target": f"{stem}.png", "boxes": boxes}
    if face_age is not None:
        expected["mini_adult"] = True
    return {"id": f"{name}-{index:06d}", "prompt": scene.caption, "task": task, "refs": refs, "expected": expected}


def _single_thread() -> None:
    # Each worker is one process; torch's own threads would oversubscribe the cores.
    torch.set_num_threads(1)


def _render_chunk(job: tuple) -> list[dict]:
    name, indices, world, seed, ref_size, out, sizes = job
    return [_render_sample(name, i, world, seed, ref_size, Path(out), s) for i, s in zip(indices, sizes)]


def _plan(cfg: SynthConfig) -> dict[str, list[int | None]]:
    """Group size per sample of every set (None = random 1 to max_people); benchmarks cover every size evenly."""
    b, most = cfg.build, cfg.world.max_people
    per_size = [s for s in range(1, most + 1) for _ in range(b.bench_per_size)]
    mini = [1 + i % most for i in range(b.mini_adults)]
    return {
        "sft-group-train": [None] * b.sft_group,
        "sft-age-train": [None] * b.sft_age,
        "sft-group-heldout": [None] * b.heldout_sft,
        "sft-age-heldout": [None] * b.heldout_sft,
        "synth-group": per_size,
        "synth-age": per_size,
        "mini-adults": mini,
    }


def build(out: Path, cfg: SynthConfig, progress: bool = True, chunk: int = 32) -> dict:
    """Render every set into ``out``; write one manifest per set and ``build.json``; return the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = _plan(cfg)
    jobs = []
    for name, sizes in plan.items():
        for start in range(0, len(sizes), chunk):
            idx = list(range(start, min(start + chunk, len(sizes))))
            jobs.append((name, idx, cfg.world, cfg.build.seed, cfg.build.ref_size, str(out), [sizes[i] for i in idx]))
    records: dict[str, list[dict]] = {name: [] for name in plan}
    start = time.perf_counter()
    bar = tqdm(total=sum(len(s) for s in plan.values()), desc="synth build", disable=not progress)
    with ProcessPoolExecutor(cfg.build.workers, initializer=_single_thread) as pool:
        for job, result in zip(jobs, pool.map(_render_chunk, jobs)):
            records[job[0]].extend(result)
            bar.update(len(result))
    bar.close()
    seconds = time.perf_counter() - start
    for name, recs in records.items():
        text = "".join(json.dumps(r) + "\n" for r in recs)
        atomic_write(out / f"{name}.jsonl", lambda p, text=text: p.write_text(text))
    scenes = sum(len(r) for r in records.values())
    refs = sum(len(r.get("refs", r.get("subjects", []))) for recs in records.values() for r in recs)
    summary = {
        "counts": {name: len(recs) for name, recs in records.items()},
        "images": scenes + refs,
        "seconds": seconds,
        "images_per_second": (scenes + refs) / seconds,
        "config": to_dict(cfg),
    }
    atomic_write(out / "build.json", lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    return summary
