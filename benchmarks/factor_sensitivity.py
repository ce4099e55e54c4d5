"""How much each identity factor moves the identity loss's embedder and the judge (issue 19).

The identity loss pulls a generated face toward its reference along the frozen ``encoder``'s cosine similarity;
FaceSim scores it with the ``judge``'s. A factor the encoder's cosine barely feels is one the loss barely teaches,
even where a linear probe can read it (``benchmarks/reference_probes.py``). Each of ``--people`` identities is
rendered alone in a scene, then re-rendered in the *same* scene (pose, light, clothes, place) with one factor
changed: categorical factors to another value, continuous ones to the far end of their range, a mole or freckles
toggled. Reported per embedder: the mean cosine distance (1 - cos) the change causes, divided by the mean distance
between two different people in the same scene (1 = the change weighs as much as a whole identity).

And what an unbound factor costs FaceSim: each person is also rendered in a second scene (the "reference"), and in
the first scene with one factor drawn at random from its prior, as a model that does not bind it would draw it. The
judge's cosine of that face to the reference, over the faithful face's, is the FaceSim/mu of a face perfect in all
but that factor. Last, the first 60 people drawn in each of the 7 skin tones (light to dark), same scene: how far
apart each embedder puts the tones.

    python benchmarks/factor_sensitivity.py --cast data/cast [--people 200] [--extra encoder_spatial]
                                            [--json benchmarks/results/factor_sensitivity.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch

# the ranges sample_identity draws continuous factors from: a change moves the value to the far end
RANGES = {"face_aspect": (0.68, 0.9), "eye_spacing": (0.17, 0.25), "eye_size": (0.16, 0.24), "eye_shape": (0.35, 0.8),
          "mouth_width": (0.28, 0.5), "nose_length": (0.14, 0.26), "jaw": (0.0, 1.0), "brow_angle": (-18.0, 18.0)}


def category_sizes() -> dict[str, int]:
    """How many values each categorical factor has."""
    from idglow.cast.factors import EYE_COLOURS, HAIR_COLOURS, HAIR_STYLES, SKIN_TONES

    return {"skin": len(SKIN_TONES), "eye_colour": len(EYE_COLOURS), "hair_colour": len(HAIR_COLOURS),
            "hair_style": len(HAIR_STYLES)}


def changed(identity, factor: str, rng: np.random.Generator):
    """``identity`` with ``factor`` changed (see the module docstring)."""
    value = getattr(identity, factor)
    sizes = category_sizes()
    if factor in sizes:
        new = int((value + 1 + rng.integers(sizes[factor] - 1)) % sizes[factor])
    elif factor in RANGES:
        lo, hi = RANGES[factor]
        new = lo if value > (lo + hi) / 2 else hi
    elif factor == "mole":
        new = None if value is not None else (0.3, 0.3)
    else:  # freckles
        new = not value
    return dataclasses.replace(identity, **{factor: new})


def randomized(identity, factor: str, rng: np.random.Generator):
    """``identity`` with ``factor`` drawn afresh from its prior (it may land on the same value)."""
    sizes = category_sizes()
    if factor in sizes:
        new = int(rng.integers(sizes[factor]))
    elif factor in RANGES:
        new = float(rng.uniform(*RANGES[factor]))
    elif factor == "mole":  # sample_identity's prior: 45% have one
        new = (float(rng.uniform(-0.55, 0.55)), float(rng.uniform(-0.1, 0.6))) if rng.random() < 0.45 else None
    else:
        new = bool(rng.random() < 0.3)
    return dataclasses.replace(identity, **{factor: new})


@torch.no_grad()
def embed(scene_seed: int, identity, embedders: dict) -> dict[str, torch.Tensor]:
    """Each embedder's unit embedding [D] of ``identity``'s face alone in scene ``scene_seed`` (128x64)."""
    from idglow.cast.crops import face_crops, to_tensor
    from idglow.cast.scenes import sample_group

    scene = sample_group(np.random.default_rng(scene_seed), [identity], "adult", 128, 64)
    crops = face_crops(to_tensor(scene.image)[None], torch.tensor(scene.boxes, dtype=torch.float32))
    return {name: torch.nn.functional.normalize(model(crops), dim=-1)[0] for name, model in embedders.items()}


def tone_distances(seed: int, people: int, embedders: dict) -> dict[str, list[list[float]]]:
    """Per embedder, the mean cosine distance [7][7] between one person drawn in every skin tone, same scene."""
    from idglow.cast.factors import SKIN_TONES, sample_identity

    out = {name: np.zeros((len(SKIN_TONES), len(SKIN_TONES))) for name in embedders}
    for k in range(people):
        person = sample_identity(seed, k)
        drawn = [embed(k, dataclasses.replace(person, skin=t), embedders) for t in range(len(SKIN_TONES))]
        for name in embedders:
            e = torch.stack([d[name] for d in drawn])
            out[name] += (1.0 - e @ e.T).numpy() / people
    return {name: m.round(4).tolist() for name, m in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cast", required=True, help="cast folder (its world seed names the people)")
    p.add_argument("--judges", default="assets/judges")
    p.add_argument("--people", type=int, default=200, help="identities, each in its own scene")
    p.add_argument("--json", default="benchmarks/results/factor_sensitivity.json")
    p.add_argument("--extra", nargs="*", default=[], metavar="NAME",
                   help="more embedders of --judges to measure (e.g. those of identity_loss.extra_embedders)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from idglow.cast.factors import sample_identity
    from idglow.cast.judge_training import load_embedder

    judges = {name: load_embedder(args.judges, name) for name in ("encoder", "judge", *args.extra)}
    seed = json.loads((Path(args.cast) / "build.json").read_text())["config"]["world"]["seed"]
    factors = ["skin", "hair_colour", "eye_colour", "hair_style", *RANGES, "mole", "freckles"]
    rng = np.random.default_rng(0)
    distance = {name: {f: [] for f in ["other person", *factors]} for name in judges}
    to_reference = {name: {f: [] for f in ["faithful", *factors]} for name in judges}
    for k in range(args.people):
        person, other = sample_identity(seed, k), sample_identity(seed, k + args.people)
        base, reference = embed(k, person, judges), embed(k + 1_000_000, person, judges)
        for factor, variant in [("other person", other), *((f, changed(person, f, rng)) for f in factors)]:
            moved = embed(k, variant, judges)
            for name in judges:
                distance[name][factor].append(1.0 - float(base[name] @ moved[name]))
        for factor, variant in [("faithful", person), *((f, randomized(person, f, rng)) for f in factors)]:
            drawn = base if factor == "faithful" else embed(k, variant, judges)
            for name in judges:
                to_reference[name][factor].append(float(drawn[name] @ reference[name]))
    table = {name: {f: {"distance": float(np.mean(d)), "of_a_person": float(np.mean(d) / np.mean(per["other person"])),
                        **({"facesim_if_unbound": float(np.mean(to_reference[name][f]) / np.mean(to_reference[name]["faithful"]))}
                           if f in to_reference[name] else {})}
                    for f, d in per.items()} for name, per in distance.items()}
    tones = tone_distances(seed, min(args.people, 60), judges)
    Path(args.json).write_text(json.dumps({"command": "python " + " ".join(map(shlex.quote, sys.argv)),
                                           "people": args.people, "sensitivity": table,
                                           "skin_tone_distance": {"people": min(args.people, 60), **tones}}, indent=2) + "\n")
    print("| factor | encoder: 1 - cos when changed | of a person | judge: 1 - cos | of a person | judge FaceSim/mu if drawn "
          "at random |\n|---|---|---|---|---|---|")
    for f in ["other person", *factors]:
        e, j = table["encoder"][f], table["judge"][f]
        unbound = f"{j['facesim_if_unbound']:.3f}" if "facesim_if_unbound" in j else "–"
        print(f"| {f} | {e['distance']:.3f} | {e['of_a_person']:.2f} | {j['distance']:.3f} | {j['of_a_person']:.2f} | {unbound} |")
    if args.extra:
        print("\nshare of a person, per embedder:\n| factor | " + " | ".join(judges) + " |\n|---|" + "---|" * len(judges))
        for f in factors:
            print(f"| {f} | " + " | ".join(f"{table[n][f]['of_a_person']:.2f}" for n in judges) + " |")
    for name, m in tones.items():  # tones are ordered light to dark
        print(f"{name}: 1 - cos between skin tones 0 and 2 (light) {m[0][2]:.3f}, 2 and 4 {m[2][4]:.3f}, 4 and 6 (dark) "
              f"{m[4][6]:.3f}; neighbours " + ", ".join(f"{m[t][t + 1]:.3f}" for t in range(len(m) - 1)))


if __name__ == "__main__":
    main()
