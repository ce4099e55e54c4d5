"""What an identity embedder's gradient draws (issue 19): the face one person's reference becomes when it is pushed,
by gradient ascent on one embedder's cosine, toward another person's reference.

The identity loss moves generated faces along exactly such gradients. If an embedder's gradient paints texture that
it, and the evaluation judge, then read as the other person, a loss through it can raise FaceSim with no likeness a
person sees. For each of ``--pairs`` pairs of held-out people (the first subjects of consecutive synth-group records),
the reference crop of A (32x32, [-1, 1]) is optimised for ``--steps`` steps of Adam (lr ``--lr``, clipped to [-1, 1])
to raise the cosine between the embedder's embedding of it and of B's reference, once per embedder. Reported per
embedder: the mean cosine to B before and after, under that embedder and under the judge (which none was optimised
on), and how far the pixels moved (mean absolute change, [-1, 1] units). The figure has one row per pair: A, the
result of each embedder, B.

    python benchmarks/embedder_gradients.py --cast data/cast [--embedders encoder encoder_spatial encoder_robust] [--pairs 8]
                                            [--steps 200] [--png benchmarks/results/embedder_gradients.png]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
import torch.nn.functional as F


def reference_pairs(cast: Path, pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference crops [P, 3, 32, 32] of people A and B: the first subjects of records 2k and 2k + 1."""
    from idglow.cast.crops import to_tensor
    from idglow.data.images import read_rgb

    lines = (cast / "synth-group.jsonl").read_text().splitlines()[: 2 * pairs]
    if len(lines) < 2 * pairs:
        raise SystemExit(f"{cast / 'synth-group.jsonl'}: {len(lines)} records, {2 * pairs} needed for --pairs {pairs}")
    crops = torch.stack([to_tensor(read_rgb(cast / json.loads(line)["refs"][0], f"{cast}/synth-group.jsonl:{i + 1}"))
                         for i, line in enumerate(lines)])
    return crops[0::2], crops[1::2]


def ascend(embedder: torch.nn.Module, start: torch.Tensor, target: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """``start`` [P, 3, h, w] moved by Adam to raise its cosine with ``target`` [P, E] under ``embedder``."""
    x = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        loss = -(F.normalize(embedder(x), dim=-1) * target).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(-1, 1)
    return x.detach()


def cosine(embedder: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> float:
    with torch.no_grad():
        return float((F.normalize(embedder(a), dim=-1) * F.normalize(embedder(b), dim=-1)).sum(-1).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cast", required=True, help="cast folder with synth-group.jsonl")
    p.add_argument("--judges", default="assets/judges")
    p.add_argument("--embedders", nargs="+", default=["encoder", "encoder_spatial", "encoder_robust"], metavar="NAME",
                   help="embedders in --judges to ascend (default: encoder encoder_spatial encoder_robust)")
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--png", default="benchmarks/results/embedder_gradients.png")
    p.add_argument("--json", default="benchmarks/results/embedder_gradients.json")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from PIL import Image

    from idglow.cast.crops import to_uint8
    from idglow.cast.judge_training import load_embedder

    a, b = reference_pairs(Path(args.cast), args.pairs)
    judge = load_embedder(args.judges, "judge")
    result, columns = {}, [a]
    for name in args.embedders:
        embedder = load_embedder(args.judges, name)
        with torch.no_grad():
            target = F.normalize(embedder(b), dim=-1)
        moved = ascend(embedder, a, target, args.steps, args.lr)
        columns.append(moved)
        result[name] = {"own_cosine_before": cosine(embedder, a, b), "own_cosine_after": cosine(embedder, moved, b),
                        "judge_cosine_before": cosine(judge, a, b), "judge_cosine_after": cosine(judge, moved, b),
                        "judge_cosine_to_a_after": cosine(judge, moved, a),
                        "pixel_change": float((moved - a).abs().mean())}
        print(name, json.dumps({k: round(v, 3) for k, v in result[name].items()}))
    columns.append(b)
    rows = [np.concatenate([to_uint8(c[i]) for c in columns], axis=1) for i in range(args.pairs)]
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    sheet.resize((sheet.width * 4, sheet.height * 4), Image.NEAREST).save(args.png)
    Path(args.json).write_text(json.dumps({"command": "python " + shlex.join(["benchmarks/embedder_gradients.py", *(argv or sys.argv[1:])]),
                                           "pairs": args.pairs, "steps": args.steps, "lr": args.lr,
                                           "columns": ["A", *args.embedders, "B"], "embedders": result}, indent=2) + "\n")
    print(f"wrote {args.png} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
