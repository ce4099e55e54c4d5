"""How much identity survives an autoencoder round trip.

For each benchmark record, the true target render is encoded and decoded by the autoencoder; the
judges then detect, embed and Hungarian-match faces to the references. The mean FaceSim of the
reconstructions is the ceiling of any model trained in that latent space; the same number on the
true renders is mu_real.

    python benchmarks/latent_identity_ceiling.py [--vae runs/vae-base/vae] [--data data/cast] [--judges assets/judges]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from idglow.cast.crops import face_crops, to_tensor
from idglow.cast.judge_training import load_judges
from idglow.conditioning.representation import LatentSpace
from idglow.data.manifest import load_manifest
from idglow.eval.facesim import face_sim


def _load(path: Path) -> torch.Tensor:
    return to_tensor(np.array(Image.open(path).convert("RGB")))


@torch.no_grad()
def _face_sim(judges, image: torch.Tensor, refs: torch.Tensor) -> tuple[float, int]:
    boxes = judges["detector"].detect(image)[0][:, :4]
    faces = judges["judge"](face_crops(image, boxes)) if len(boxes) else torch.zeros(0, refs.shape[1])
    return face_sim(refs, faces), len(boxes)


@torch.no_grad()
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vae", default="runs/vae-base/vae")
    p.add_argument("--data", default="data/cast")
    p.add_argument("--judges", default="assets/judges")
    args = p.parse_args()
    judges = load_judges(args.judges)
    root = Path(args.data)
    rep = None
    print("| benchmark | FaceSim, true renders | FaceSim, reconstructions | faces detected in reconstructions |")
    print("|---|---|---|---|")
    for name in ("synth-group", "synth-age"):
        true_sims, rec_sims, found, expected = [], [], 0, 0
        for record in load_manifest(root / f"{name}.jsonl", "benchmark"):
            target = _load(root / record["expected"]["target"])[None]
            rep = rep or LatentSpace(target.shape[-2], target.shape[-1], args.vae)
            refs = judges["judge"](torch.stack([_load(root / r) for r in record["refs"]]))
            true_sims.append(_face_sim(judges, target, refs)[0])
            sim, n = _face_sim(judges, rep.decode(rep.encode(target)).clamp(-1, 1), refs)
            rec_sims.append(sim)
            found, expected = found + n, expected + len(record["refs"])
        print(f"| {name} | {np.mean(true_sims):.3f} | {np.mean(rec_sims):.3f} | {found}/{expected} |")


if __name__ == "__main__":
    main()
