"""Light and dark skin side by side: reference | true render | a model's drawing, for one-person synth-group records.

The skin probe reads the shipped model's light-skinned faces two to three tones darker (``identity_cap.py``'s
``skin_by_tone``). This figure shows why, to the eye: held-out one-person records whose person has the lightest
tone (0) and a dark one (5), each row the reference crop, the true render and the model's drawing (record k's noise
from seed k, 20 Euler steps, guidance 1 and the trained gate: the shipped model's group sampler).

    python benchmarks/skin_faces.py [--run assets/idglow] [--cast data/cast] [--per-tone 4] [--out benchmarks/results/skin_faces.png]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from PIL import Image

TONES = (0, 5)  # the lightest tone and a dark one


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="assets/idglow", help="a model folder or run")
    p.add_argument("--cast", default="data/cast")
    p.add_argument("--per-tone", type=int, default=4, help="records per skin tone")
    p.add_argument("--out", default="benchmarks/results/skin_faces.png")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from idglow.cast.crops import to_tensor
    from idglow.cast.factors import sample_identity
    from idglow.data.images import read_rgb
    from idglow.eval.run_eval import _records
    from idglow.generate.pipeline import IdGlowPipeline

    manifest = Path(args.cast) / "synth-group.jsonl"
    seed = json.loads((Path(args.cast) / "build.json").read_text())["config"]["world"]["seed"]
    records, refs = _records(manifest, None)
    singles = [(r, c) for r, c in zip(records, refs) if len(r["expected"]["identities"]) == 1]
    pipe = IdGlowPipeline.from_run(args.run)
    rows = []
    for tone in TONES:
        chosen = [(r, c) for r, c in singles if sample_identity(seed, r["expected"]["identities"][0]).skin == tone]
        chosen = chosen[: args.per_tone]
        if not chosen:
            raise SystemExit(f"{manifest}: no one-person record of skin tone {tone}")
        # as sft-eval samples (tensors in [-1, 1]; guidance 1 and the trained gate: the shipped group sampler)
        drawn = pipe.sample([r["prompt"] for r, _ in chosen], [c for _, c in chosen], "group",
                            generator=[torch.Generator().manual_seed(k) for k in range(len(chosen))])
        for (record, crops), image in zip(chosen, drawn):
            truth = to_tensor(read_rgb(manifest.parent / record["expected"]["target"], f"{manifest}: target"))
            side = truth.shape[-2]
            ref = torch.nn.functional.interpolate(crops[:1], size=(side, side), mode="nearest")[0]
            rows.append(torch.cat([ref, truth, image], dim=2))
    grid = (torch.cat(rows, dim=1).clamp(-1, 1) + 1) / 2
    picture = Image.fromarray((grid.permute(1, 2, 0) * 255).round().byte().numpy())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    picture.resize((picture.width * 3, picture.height * 3), Image.Resampling.NEAREST).save(args.out)
    print(f"wrote {args.out}: rows = skin tone {TONES[0]} then {TONES[1]}; columns = reference, true render, {args.run}")


if __name__ == "__main__":
    main()
