"""Where does identity get lost? The cap analysis of issue 19, on the cast's held-out benchmarks.

1. **Noise and denoise**: each benchmark record's *true render* is noised to sigma (0.3, 0.5, 0.7, ...) and
   denoised by a model with the record's caption (the base model: text only; ``--run``: an SFT/DPO run with
   the record's references). FaceSim/mu, identification and count accuracy by sigma say how much of a
   person a model keeps from a given noise level: sigma 1 is ordinary generation, sigma 0 the true render.
2. **Factor probes** (:mod:`idglow.eval.probes`): linear probes on judge embeddings, fitted on true renders
   of *training* identities, read on held-out faces: true renders, the base model's drawings (sigma 1), the
   run's outputs (sigma 1), and each model's faces denoised from every lower sigma (which factors survive
   that much noise?).
3. **Identification**: top-1 of each matched face among every identity of the benchmark (chance 1/G).

    python benchmarks/identity_cap.py --cast data/cast [--run runs/sft-lora] [--limit 100] [--steps 20]
    python benchmarks/identity_cap.py --cast data/cast --max-people 2   # only groups of 1-2 people

Resumable: each (benchmark, model, sigma) row is saved in ``--out/rows.json`` as it finishes and skipped
on a re-run. Writes ``--json`` (default ``benchmarks/results/identity_cap.json``) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from tqdm.auto import tqdm

BENCHMARKS = ("synth-group", "synth-age")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cast", required=True, help="cast folder (idglow synth build) with benchmarks and SFT manifests")
    p.add_argument("--base", default="assets/base", help="the base model (text only)")
    p.add_argument("--run", default=None, help="an SFT or DPO run, sampled with the records' references")
    p.add_argument("--judges", default="assets/judges")
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.3, 0.5, 0.7, 1.0])
    p.add_argument("--limit", type=int, default=100, help="records per benchmark (evenly spread over group sizes)")
    p.add_argument("--max-people", type=int, default=None,
                   help="only records with at most this many people (to compare with a cast of smaller groups, "
                        "e.g. 2 against the close-up cast); the identification gallery stays the whole benchmark")
    p.add_argument("--steps", type=int, default=20, help="Euler steps of a full (sigma 1) generation")
    p.add_argument("--probe-faces", type=int, default=4000, help="training-identity faces the probes are fitted on")
    p.add_argument("--id-guidance", type=float, default=None,
                   help="identity guidance of --run, with its trained gates (default: the sampler its model folder "
                        "recommends per task, sampler.json; guidance 1 and the trained gates where it has none)")
    p.add_argument("--out", default="runs/identity-cap", help="working folder (rows, face features)")
    p.add_argument("--json", default="benchmarks/results/identity_cap.json")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def _targets(manifest: Path, records: list[dict]) -> torch.Tensor:
    from idglow.cast.crops import to_tensor
    from idglow.data.images import read_rgb

    return torch.stack([to_tensor(read_rgb(manifest.parent / r["expected"]["target"], f"{manifest}: target")) for r in records])


class Sampler:
    """The base model (text only) or a run (with references), sampling records from noised true renders.
    Record k's noise comes from seed k, so every model and sigma draws the same noise for a record."""

    def __init__(self, base: str, run: str | None, id_guidance: float | None):
        from idglow.generate.pipeline import IdGlowPipeline
        from idglow.runs.load import load_base

        self.run, self.id_guidance = run, id_guidance
        if run is not None:
            self.pipe = IdGlowPipeline.from_run(run)
        else:
            self.model, self.cfg = load_base(base)

    def __call__(self, records, refs, targets, sigma: float, steps: int, batch: int = 16) -> torch.Tensor:
        init, start = (None, 1.0) if sigma >= 1.0 else (targets, sigma)
        prompts = [r["prompt"] for r in records]
        if self.run is None:
            from idglow.eval.base_eval import sample_captions

            return sample_captions(self.model, self.cfg, prompts, *targets.shape[-2:], steps=steps, batch=batch,
                                   init_images=init, sigma_start=start)
        from idglow.generate.controls import identity_controls
        from idglow.runs.sampler import intervals_for, settings_for

        tasks = [r["task"] for r in records]
        guidance, schedule = settings_for(self.pipe.recommended, tasks)
        intervals = intervals_for(self.pipe.recommended, tasks)
        if self.id_guidance is not None:  # a fixed guidance with the trained gates, as the tables before sampler.json
            guidance, schedule, intervals = [self.id_guidance] * len(tasks), [], None
        out = []
        with identity_controls(self.pipe.model, 1.0, schedule or None):
            for i in tqdm(range(0, len(records), batch), leave=False):
                generators = [torch.Generator().manual_seed(k) for k in range(i, min(i + batch, len(records)))]
                out.append(self.pipe.sample(prompts[i : i + batch], refs[i : i + batch], tasks[i : i + batch],
                                            steps=steps, generator=generators, id_guidance=guidance[i : i + batch],
                                            id_guidance_interval=None if intervals is None else intervals[i : i + batch],
                                            init_images=None if init is None else init[i : i + batch], sigma_start=start,
                                            height=targets.shape[-2], width=targets.shape[-1]))  # the cast's size
        return torch.cat(out)


@torch.no_grad()
def matched_faces(image: torch.Tensor, score: dict, record: dict, judge) -> tuple[list[int], torch.Tensor]:
    """Judge embeddings [M, D] of the faces matched to references, and those references' identities [M]."""
    from idglow.cast.crops import face_crops

    slots = [k for k, f in enumerate(score["face_index"]) if f >= 0]
    if not slots:
        return [], torch.zeros(0, 0)
    boxes = torch.tensor(score["boxes"])[[score["face_index"][k] for k in slots]]
    return [record["expected"]["identities"][k] for k in slots], judge(face_crops(image[None], boxes))


def score_rows(images, records, refs, judges, gallery, mu_real: float) -> tuple[dict, list[int], torch.Tensor]:
    """Benchmark metrics of images [B, 3, H, W] and the matched faces' identities and embeddings."""
    from idglow.eval.cast_bench import score_image, summarise

    scores, ids, feats = [], [], []
    for image, record, crops in zip(images, records, refs):
        score = score_image(image, crops, record, judges, gallery)
        scores.append(score)
        who, emb = matched_faces(image, score, record, judges["judge"])
        ids += who
        if who:
            feats.append(emb)
    metrics = summarise(scores, mu_real)
    keep = ("facesim_norm", "identification", "identification_chance", "count_accuracy", "child_rate", "mini_adult_rate")
    return {k: metrics.get(k) for k in keep}, ids, torch.cat(feats) if feats else torch.zeros(0, 1)


def chosen_records(manifest: Path, limit: int | None, max_people: int | None) -> tuple[list[dict], list[torch.Tensor]]:
    """``limit`` records of the benchmark evenly spread over its group sizes, only those of at most ``max_people``
    people when given, and their reference crops [N_refs, 3, h, w] each (as `idglow train sft-eval` picks them)."""
    from idglow.eval.run_eval import _records

    return _records(manifest, limit, max_people=max_people)


def denoise_rows(args, judges, rows: dict, workdir: Path) -> None:
    """Part 1: every (benchmark, model, sigma) row not yet in ``rows`` (saved after each)."""
    from idglow.eval.mu_real import read_mu_real
    from idglow.eval.run_eval import _gallery

    models = {"base": Sampler(args.base, None, 1.0)}
    if args.run:
        models["run"] = Sampler(args.base, args.run, args.id_guidance)
    for bench in BENCHMARKS:
        manifest = Path(args.cast) / f"{bench}.jsonl"
        records, refs = chosen_records(manifest, args.limit, args.max_people)
        gallery, targets, mu_real = _gallery(manifest, judges["judge"]), _targets(manifest, records), read_mu_real(manifest)
        jobs = [("truth", 0.0)] + [(m, s) for m in models for s in args.sigmas]
        for model, sigma in jobs:
            key = f"{bench}/{model}/{sigma:g}"
            if key in rows:
                continue
            start = time.perf_counter()
            if model == "truth":
                images = targets
            else:
                images = models[model](records, refs, targets, sigma, args.steps)
            metrics, ids, feats = score_rows(images, records, refs, judges, gallery, mu_real)
            rows[key] = {**metrics, "seconds": round(time.perf_counter() - start, 1)}
            # sigma 0 and 1 keep their first names, so older working folders still probe
            suffix = "" if sigma in (0.0, 1.0) else f"@{sigma:g}"
            np.savez(workdir / f"faces-{bench}-{model}{suffix}.npz", ids=np.array(ids), features=feats.numpy())
            (workdir / "rows.json").write_text(json.dumps(rows, indent=2))
            print(key, json.dumps(rows[key]), flush=True)


@torch.no_grad()
def probe_training_faces(cast: Path, judge, limit: int) -> tuple[torch.Tensor, list[int]]:
    """Judge embeddings of true-render faces of training identities (SFT group scenes, at their boxes)."""
    from idglow.cast.crops import face_crops, to_tensor
    from idglow.data.images import read_rgb
    from idglow.data.manifest import load_manifest

    manifest = cast / "sft-group-train.jsonl"
    feats, ids = [], []
    for record in load_manifest(manifest, "sft", check_files=False):
        image = to_tensor(read_rgb(manifest.parent / record["image"], f"{manifest}: image"))
        boxes = torch.tensor([s["box"] for s in record["subjects"]])
        feats.append(judge(face_crops(image[None], boxes)))
        ids += [s["attributes"]["identity"] for s in record["subjects"]]
        if len(ids) >= limit:
            break
    return torch.cat(feats)[:limit], ids[:limit]


def probe_table(args, judges, workdir: Path) -> dict:
    """Part 2: probe accuracy per factor for true renders, base drawings and run outputs at sigma 1, and the faces
    each model denoised from every lower sigma (columns ``<bench>/<model>@<sigma>``)."""
    from idglow.cast.factors import sample_identity
    from idglow.eval.probes import FactorProbes

    seed = json.loads((Path(args.cast) / "build.json").read_text())["config"]["world"]["seed"]
    feats, ids = probe_training_faces(Path(args.cast), judges["judge"], args.probe_faces)
    probes = FactorProbes(feats, [sample_identity(seed, i) for i in ids])
    table, tones = {}, {}
    columns = [(bench, model, "") for bench in BENCHMARKS for model in ("truth", "base", "run")]
    columns += [(bench, model, f"@{sigma:g}") for bench in BENCHMARKS for model in ("base", "run")
                for sigma in args.sigmas if sigma not in (0.0, 1.0)]
    for bench, model, suffix in columns:
        path = workdir / f"faces-{bench}-{model}{suffix}.npz"
        if not path.is_file():
            continue
        data = np.load(path, allow_pickle=False)
        people = [sample_identity(seed, int(i)) for i in data["ids"]]
        features = torch.from_numpy(data["features"])
        table[f"{bench}/{model}{suffix}"] = {"faces": len(people), **probes.accuracy(features, people)}
        tones[f"{bench}/{model}{suffix}"] = skin_by_tone(probes, features, people)
    return {"training_faces": len(ids), "accuracy": table, "skin_by_tone": tones}


@torch.no_grad()
def skin_by_tone(probes, features: torch.Tensor, people: list) -> dict[str, dict[str, float]]:
    """Per true skin tone (0 = lightest): faces, the share the skin probe reads exactly, and its mean error in tones
    (+ = drawn darker). The tones are ordered light to dark, so a shift says which way a model misses."""
    predicted = probes.probes["skin"](features.float()).argmax(-1).numpy()
    true = np.array([p.skin for p in people])
    return {str(t): {"faces": int((true == t).sum()), "exact": float((predicted[true == t] == t).mean()),
                     "mean_shift": float((predicted[true == t] - t).mean())}
            for t in range(int(true.max()) + 1) if (true == t).any()}


def markdown(result: dict) -> str:
    lines = ["| benchmark | model | sigma | FaceSim/mu | identified (chance) | count acc | child rate |",
             "|---|---|---|---|---|---|---|"]
    for key, r in result["denoise"].items():
        bench, model, sigma = key.split("/")
        child = "–" if r.get("child_rate") is None else f"{r['child_rate']:.3f}"
        lines.append(f"| {bench} | {model} | {sigma} | {r['facesim_norm']:.3f} | {r['identification']:.3f} "
                     f"({r['identification_chance']:.3f}) | {r['count_accuracy']:.3f} | {child} |")
    probes = result.get("probes", {}).get("accuracy", {})
    if probes:
        from idglow.eval.probes import FACTORS

        cols = list(probes)
        lines += ["", "| factor | chance | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
        for name in FACTORS:
            chance = probes[cols[0]][name]["chance"]
            lines.append(f"| {name} | {chance:.2f} | " + " | ".join(f"{probes[c][name]['accuracy']:.2f}" for c in cols) + " |")
        tones = result["probes"].get("skin_by_tone", {})
        if tones:
            lines += ["", "| skin tone (0 = lightest): exact / mean shift in tones | " + " | ".join(tones) + " |",
                      "|---|" + "---|" * len(tones)]
            for t in tones[cols[0]]:
                lines.append(f"| {t} | " + " | ".join(f"{v[t]['exact']:.2f} / {v[t]['mean_shift']:+.2f}" if t in v else "–"
                                                       for v in tones.values()) + " |")
    return "\n".join(lines)


def run_sampler(args) -> dict | None:
    """How ``--run`` was sampled: a fixed guidance with its trained gates, or its folder's recommended sampler."""
    if args.run is None:
        return None
    if args.id_guidance is not None:
        return {"id_guidance": args.id_guidance, "schedule": "trained"}
    from idglow.runs.sampler import read_sampler

    return {task: {"id_guidance": s.id_guidance, "schedule": list(s.schedule), "id_guidance_interval": s.id_guidance_interval}
            for task, s in read_sampler(args.run).items()}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    from idglow.cast.judge_training import load_judges

    workdir = Path(args.out)
    workdir.mkdir(parents=True, exist_ok=True)
    judges = load_judges(args.judges)
    rows_path = workdir / "rows.json"
    rows = json.loads(rows_path.read_text()) if rows_path.is_file() else {}
    start = time.perf_counter()
    denoise_rows(args, judges, rows, workdir)
    result = {"command": "python " + " ".join(map(shlex.quote, sys.argv)),
              "records_per_benchmark": args.limit, "run_sampler": run_sampler(args), "denoise": rows, "probes": probe_table(args, judges, workdir),
              "seconds": round(time.perf_counter() - start, 1), "threads": args.threads}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
