"""Generating the cast benchmarks with a trained SFT or DPO run and scoring them with the judges
(``idglow train sft-eval``). Record k of a benchmark (after ``limit``) uses seed ``seed + k``, so its image
does not depend on the batch it is in."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from idglow.cast.crops import reference_grid, to_tensor, to_uint8
from idglow.cast.judge_training import load_judges
from idglow.data.images import read_rgb, warn_if_trained_at_another_size
from idglow.data.manifest import evenly_spread, load_manifest
from idglow.eval.cast_bench import judge_gallery, score_image, summarise
from idglow.eval.cast_quality import cast_quality
from idglow.eval.mu_real import read_mu_real
from idglow.eval.preference import record_group_score
from idglow.generate.controls import gate_config_with, identity_controls
from idglow.generate.pipeline import IdGlowPipeline
from idglow.runs.load import check_run
from idglow.utils.config import to_dict
from idglow.utils.defaults import JUDGES
from idglow.utils.io import atomic_write


def _records(manifest: Path, limit: int | None, complement: bool = False,
             max_people: int | None = None) -> tuple[list[dict], list[torch.Tensor]]:
    """The manifest's records (``max_people``: only those of at most that many people; ``limit``: that many, evenly
    spread, since benchmarks are ordered by group size; with ``complement``, the records that ``limit`` leaves out)
    and their reference crops [N_refs, 3, h, w] each."""
    records = load_manifest(manifest, "benchmark")
    if max_people is not None:
        records = [r for r in records if len(r["refs"]) <= max_people]
        if not records:
            raise ValueError(f"--max-people {max_people}: no record of {manifest} has that few people")
    if complement:
        if limit is None:
            raise ValueError("complement: needs a limit (the records that --limit N picks are the ones left out)")
        chosen = {r["_line"] for r in evenly_spread(records, limit)}
        records = [r for r in records if r["_line"] not in chosen]
        if not records:
            raise ValueError(f"complement: --limit {limit} picks every record of {manifest}; none is left")
    else:
        records = evenly_spread(records, limit)
    refs = [torch.stack([to_tensor(read_rgb(manifest.parent / r, f"{manifest}:{rec['_line']}: refs")) for r in rec["refs"]])
            for rec in records]
    return records, refs


def _gallery(manifest: Path, judge: torch.nn.Module) -> tuple[dict, torch.Tensor]:
    """The identity gallery of the whole benchmark (every record, whatever ``limit`` generates)."""
    return judge_gallery(*_records(manifest, None), judge)


@torch.no_grad()
def evaluate_benchmark(run: str | Path, manifest: str | Path, judges: str | Path = JUDGES, identity: bool = True,
                       limit: int | None = None, steps: int = 20, seed: int = 0, batch: int = 16,
                       id_guidance: float = 1.0, id_guidance_interval: Sequence[float] | None = None,
                       schedule: Sequence[str] = (), id_scale: float = 1.0, progress: bool = True,
                       complement: bool = False, max_people: int | None = None,
                       device: torch.device | str = "cpu") -> tuple[dict, np.ndarray, list[dict]]:
    """Generate every record of a benchmark manifest with the run's model and score it.

    Args:
        identity: False samples the same backbone with the identity branch off (text only).
        id_guidance: identity guidance scale of the sampler (1 = none).
        id_guidance_interval: ``(sigma_lo, sigma_hi)``: guide only at those noise levels (None: at every step).
        schedule: ``KEY=VALUE`` gate overrides for sampling (e.g. ``group.lambda_min=0.2``; analytic gates only).
        id_scale: identity strength, multiplying the gate (1 = as trained; > 1 extrapolates, at no extra forward).
        complement: score the records ``limit`` leaves out instead (to confirm a choice made on the ``limit`` records
            on records it never saw).
        max_people: generate only the records of at most that many people (before ``limit`` picks); the
            identification gallery stays the whole benchmark.
        device: where the model samples (the judges score on the CPU; the noise is drawn on the CPU, so a GPU run
            starts from the same noise, though its numbers differ from the CPU's by the devices' arithmetic).

    Returns:
        ``(metrics, grid, scores)``: :func:`idglow.eval.cast_bench.summarise` plus settings, a uint8 image of the
        first eight records (reference crops | generation), and each record's :func:`score_image` result with its
        ``id`` and ``seed`` (what pooling over training seeds needs: ``summarise`` of several runs' scores).
    """
    manifest = Path(manifest)
    scorers = load_judges(judges)
    records, refs = _records(manifest, limit, complement, max_people)
    gallery = _gallery(manifest, scorers["judge"])
    height, width = read_rgb(manifest.parent / records[0]["expected"]["target"], f"{manifest}: target").shape[:2]
    pipe = IdGlowPipeline.from_run(run, height, width, device=device)
    warn_if_trained_at_another_size(pipe.cfg.data.manifests, height, width, str(manifest))
    gate = gate_config_with(pipe.model.config.identity.gate, list(schedule)) if schedule else None
    interval = None if id_guidance_interval is None else tuple(float(x) for x in id_guidance_interval)
    mu_real = read_mu_real(manifest)
    scores, rows, generated, targets = [], [], [], []
    for start in tqdm(range(0, len(records), batch), desc=f"{manifest.stem}", disable=not progress):
        chunk, chunk_refs = records[start : start + batch], refs[start : start + batch]
        generators = [torch.Generator().manual_seed(seed + start + i) for i in range(len(chunk))]
        with identity_controls(pipe.model, id_scale, gate):
            images = pipe.sample([r["prompt"] for r in chunk], chunk_refs if identity else None, [r["task"] for r in chunk],
                                 steps=steps, generator=generators, id_guidance=id_guidance,
                                 id_guidance_interval=interval)
        for i, (image, record, crops) in enumerate(zip(images, chunk, chunk_refs)):
            target = to_tensor(read_rgb(manifest.parent / record["expected"]["target"], f"{manifest}:{record['_line']}: target"))
            scores.append({"id": record.get("id"), "seed": seed + start + i,
                           **score_image(image, crops, record, scorers, gallery, target),
                           "group_score": record_group_score(image, crops, record, scorers, mu_real)})
            generated.append(image)
            targets.append(target)
            if len(rows) < 8:
                rows.append(np.concatenate([reference_grid(crops, height), to_uint8(image)], axis=1))
    metrics = summarise(scores, mu_real)
    if len(generated) >= 2:  # naturalness: Fréchet distance of judge features to the same records' true renders
        quality = cast_quality(scorers["detector"], torch.stack(generated), torch.stack(targets),
                               [r["expected"]["count"] for r in records])
        metrics["frechet_judge"] = quality["frechet_judge"]
    metrics.update({"benchmark": str(manifest), "identity": identity, "id_guidance": id_guidance,
                    **({"id_guidance_interval": list(interval)} if interval is not None else {}),
                    **({"id_scale": id_scale} if id_scale != 1.0 else {}), "steps": steps, "seed": seed,
                    "device": str(pipe.device), "precision": pipe.precision,
                    **({"complement_of_limit": limit} if complement else {}),
                    **({"max_people": max_people} if max_people is not None else {}),
                    "run": str(run), **({"schedule": to_dict(gate)} if gate is not None else {})})
    return metrics, np.concatenate(rows, axis=0), scores


@torch.no_grad()
def evaluate_targets(manifest: str | Path, judges: str | Path = JUDGES, limit: int | None = None) -> dict:
    """The same scores for the benchmark's true target renders: the ceiling (FaceSim = mu_real) and the
    judges' own error rates (child rate, leakage) on perfect images."""
    manifest = Path(manifest)
    scorers = load_judges(judges)
    records, refs = _records(manifest, limit)
    gallery = _gallery(manifest, scorers["judge"])
    scores = [score_image(to_tensor(read_rgb(manifest.parent / r["expected"]["target"], f"{manifest}:{r['_line']}: target")),
                          crops, r, scorers, gallery) for r, crops in zip(records, refs)]
    return {**summarise(scores, read_mu_real(manifest)), "benchmark": str(manifest), "truth": True}


def evaluate_sft(run: str | Path, manifests: list[str], out: str | Path, **kwargs) -> dict[str, dict]:
    """:func:`evaluate_benchmark` on each manifest; writes ``out/<benchmark>.json`` (metrics), ``out/<benchmark>.png``
    (a grid) and ``out/<benchmark>.scores.jsonl`` (one line of scores per record)."""
    check_run(run)  # before any benchmark is read, so a wrong run is the error the user sees
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for manifest in manifests:
        metrics, grid, scores = evaluate_benchmark(run, manifest, **kwargs)
        name = Path(manifest).stem
        lines = "".join(json.dumps(score) + "\n" for score in scores)
        atomic_write(out / f"{name}.scores.jsonl", lambda p, text=lines: p.write_text(text))
        atomic_write(out / f"{name}.json", lambda p, m=metrics: p.write_text(json.dumps(m, indent=2) + "\n"))
        atomic_write(out / f"{name}.png", lambda p, g=grid: Image.fromarray(g).save(p, format="PNG"))
        results[name] = metrics
    return results
