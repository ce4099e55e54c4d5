"""``idglow generate``: images from a trained run, one at a time or over a benchmark manifest.

Every image ``NAME.png`` gets a sidecar ``NAME.json`` holding what reproduces it: run, prompt, task,
reference files, seed, steps, identity guidance and the gate schedules used. Benchmark generation
names images by record id and skips those whose PNG and sidecar already exist, so an interrupted
run continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from idglow.cast.crops import to_tensor, to_uint8
from idglow.data.images import IMAGE_SUFFIXES, read_rgb
from idglow.data.manifest import SAFE_NAME, ManifestError, load_manifest
from idglow.generate.controls import gate_config_with
from idglow.generate.pipeline import IdGlowPipeline
from idglow.identity.gate import DynamicsAwareGate
from idglow.utils.config import to_dict
from idglow.utils.io import atomic_write


@dataclasses.dataclass
class SamplingOptions:
    """What, besides prompt and references, decides an image."""

    seed: int = 0
    steps: int = 20
    id_guidance: float = 1.0
    # [sigma_lo, sigma_hi]: guide only at those noise levels (a list, as the JSON sidecar stores it); None: every step
    id_guidance_interval: list[float] | None = None


def reference_files(paths: Sequence[str | Path]) -> list[Path]:
    """Image files named directly or found (sorted) in the given folders.

    Raises:
        FileNotFoundError: a path that does not exist; ValueError: a folder with no images, or no paths.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"refs: folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"refs: {path} does not exist")
    if not files:
        raise ValueError("refs: no reference images given")
    return files


def read_references(files: Sequence[Path], size: int) -> torch.Tensor:
    """Reference crops [N, 3, size, size] in [-1, 1]; each file is resized to the run's reference size.

    Raises:
        ManifestError: naming a file that is not a readable image.
    """
    crops = []
    for path in files:
        image = read_rgb(Path(path), f"refs: {path}")
        if image.shape[:2] != (size, size):
            image = np.array(Image.fromarray(image).resize((size, size), Image.BICUBIC))
        crops.append(to_tensor(image))
    return torch.stack(crops)


def override_schedules(pipe: IdGlowPipeline, overrides: Sequence[str]) -> dict:
    """Replace the model's gate schedules by ``KEY=VALUE`` overrides (e.g. ``group.lambda_min=0.2``) for the
    rest of the process (the CLI's ``--schedule``; the pipeline's ``id_schedule`` is per call).

    Only analytic schedules can be changed at sampling time; a learned gate has trained weights.

    Returns:
        the gate configuration now in use (plain data, for the sidecar).
    """
    model = pipe.model
    current = model.config.identity.gate
    if not overrides:
        return to_dict(current)
    updated = gate_config_with(current, overrides)
    model.identity.gate = DynamicsAwareGate(updated)
    model.config.identity.gate = updated
    return to_dict(updated)


def check_name(name: str) -> str:
    """``name`` if it is a plain file name (letters, digits, '.', '_', '-'; not starting with '.'), else ValueError."""
    if not SAFE_NAME.fullmatch(name):
        raise ValueError(f"name: {name!r} is not a safe file name (letters, digits, '.', '_', '-'; not starting with '.')")
    return name


def write_image(out: Path, name: str, image: torch.Tensor, sidecar: dict) -> Path:
    """``out/name.png`` and ``out/name.json``, each written atomically (the PNG last: it marks completion).
    ``name`` must be a plain file name (it may come from data: a benchmark id), so nothing lands outside ``out``."""
    check_name(name)
    atomic_write(out / f"{name}.json", lambda p: p.write_text(json.dumps(sidecar, indent=2) + "\n"))
    atomic_write(out / f"{name}.png", lambda p: Image.fromarray(to_uint8(image)).save(p, format="PNG"))
    return out / f"{name}.png"


def _sidecar(run: str | Path, prompt: str, task: str, refs: Sequence[str], options: SamplingOptions, schedule: dict,
             pipe: IdGlowPipeline, **extra) -> dict:
    return {"run": str(run), "weights": pipe.weights, "prompt": prompt, "task": task, "refs": list(refs),
            **dataclasses.asdict(options), "height": pipe.height, "width": pipe.width, "schedule": schedule, "precision": pipe.precision, **extra}


# What decides a generated image: a sidecar that differs in any of these was made by something else.
MADE_BY = ("weights", "prompt", "task", "refs", "seed", "steps", "id_guidance", "id_guidance_interval", "height", "width", "schedule", "precision",
           "benchmark")


def _interval(options: SamplingOptions) -> tuple[float, float] | None:
    return None if options.id_guidance_interval is None else tuple(options.id_guidance_interval)


def stale_fields(sidecar: Path, expected: dict) -> list[str]:
    """``field: saved -> expected`` for each of :data:`MADE_BY` (and the run) where an existing image's sidecar differs."""
    try:
        saved = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError):
        return ["sidecar: unreadable"]
    changed = [f"{k}: {saved.get(k)!r} -> {expected.get(k)!r}" for k in MADE_BY if saved.get(k) != expected.get(k)]
    if Path(str(saved.get("run"))).resolve() != Path(expected["run"]).resolve():
        changed.insert(0, f"run: {saved.get('run')!r} -> {expected['run']!r}")
    return changed


def generate_one(pipe: IdGlowPipeline, run: str | Path, prompt: str, ref_files: Sequence[Path], task: str,
                 options: SamplingOptions, out: Path, name: str, schedule: dict) -> Path:
    """One image from a prompt and reference files; returns the PNG path."""
    if task not in ("group", "age"):
        raise ValueError(f"task: expected group or age, got {task!r}")
    crops = read_references(ref_files, pipe.ref_size)
    generator = torch.Generator().manual_seed(options.seed)
    image = pipe.sample([prompt], [crops], task, steps=options.steps, generator=[generator], id_guidance=options.id_guidance,
                        id_guidance_interval=_interval(options))[0]
    refs = [str(Path(f).resolve()) for f in ref_files]
    return write_image(out, name, image, _sidecar(run, prompt, task, refs, options, schedule, pipe))


def generate_benchmark(pipe: IdGlowPipeline, run: str | Path, manifest: str | Path, options: SamplingOptions, out: Path,
                       schedule: dict, limit: int | None = None, batch: int = 16, progress: bool = True,
                       prompts: dict[str, str] | None = None, ids: set[str] | None = None) -> dict:
    """Every record of a benchmark manifest -> ``out/<id>.png`` + sidecar; records already done are skipped.

    Record k uses seed ``options.seed + k`` (k = its line order), so images do not depend on batching.
    ``prompts`` replaces the prompts of the records it names (by id), e.g. refined ones; ``ids``
    restricts generation to those records (seeds still follow each record's line order).

    Returns:
        counts ``{"generated": G, "skipped": S}``.
    """
    manifest = Path(manifest)
    records = load_manifest(manifest, "benchmark")
    if not records:
        raise ManifestError(f"{manifest}: no records to generate (an empty benchmark)")
    keep = [(k, r) for k, r in enumerate(records) if ids is None or r["id"] in ids]
    if limit is not None:
        keep = keep[:limit]
    if prompts:
        keep = [(k, {**r, "prompt": prompts.get(r["id"], r["prompt"])}) for k, r in keep]
    too_many = [r for _, r in keep if len(r["refs"]) > pipe.cfg.model.identity.max_refs]
    if too_many:
        raise ManifestError(f"{manifest}:{too_many[0]['_line']}: refs: {len(too_many[0]['refs'])} references; the model "
                            f"takes at most {pipe.cfg.model.identity.max_refs}")
    for tmp in out.glob(".*.tmp"):  # left by an interrupted run (atomic writes rename only finished files)
        tmp.unlink(missing_ok=True)

    def sidecar(k: int, record: dict) -> dict:
        seeded = dataclasses.replace(options, seed=options.seed + k)
        return _sidecar(run, record["prompt"], record["task"], record["refs"], seeded, schedule, pipe, id=record["id"],
                        benchmark=str(manifest.resolve()))

    done = {r["id"] for _, r in keep if (out / f"{r['id']}.png").is_file() and (out / f"{r['id']}.json").is_file()}
    stale = {r["id"]: stale_fields(out / f"{r['id']}.json", sidecar(k, r)) for k, r in keep if r["id"] in done}
    stale = {name: fields for name, fields in stale.items() if fields}
    if stale:
        name, fields = next(iter(stale.items()))
        raise ValueError(f"{out}: {len(stale)} image(s) there were made otherwise, e.g. {name}.png ({'; '.join(fields[:3])}); "
                         "use another --out folder or delete them")
    todo = [(k, r) for k, r in keep if r["id"] not in done]
    bar = tqdm(total=len(keep), initial=len(keep) - len(todo), desc=f"generate {manifest.stem}", disable=not progress)
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        crops = [read_references([manifest.parent / p for p in r["refs"]], pipe.ref_size) for _, r in chunk]
        generators = [torch.Generator().manual_seed(options.seed + k) for k, _ in chunk]
        images = pipe.sample([r["prompt"] for _, r in chunk], crops, [r["task"] for _, r in chunk], steps=options.steps,
                      generator=generators, id_guidance=options.id_guidance, id_guidance_interval=_interval(options))
        for (k, record), image in zip(chunk, images):
            write_image(out, record["id"], image, sidecar(k, record))
        bar.update(len(chunk))
    bar.close()
    return {"generated": len(todo), "skipped": len(keep) - len(todo)}
