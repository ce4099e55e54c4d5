"""``idglow synth``: the synthetic cast (build, judges, mu_real, preview)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from idglow.cli.config import load
from idglow.cli.registry import command, group, non_negative_int
from idglow.utils.defaults import CAST, JUDGES

SYNTH_CONFIG = "synth config YAML (default: built-in defaults; keys: idglow config --kind synth)"


def _print_mu_real(data: str, judges: str) -> None:
    from idglow.cast.judge_training import load_judges
    from idglow.eval.mu_real import write_mu_real

    for name, result in write_mu_real(data, load_judges(judges)).items():
        print(f"{name}: mu_real = {result['mu_real']:.4f} by group size {result['by_group_size']}")


def cmd_synth_build(args: argparse.Namespace) -> int:
    """Render the cast's datasets and benchmarks; compute mu_real when judges are available."""
    from idglow.cast.build import build

    summary = build(Path(args.out), load("synth", args))
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    if (Path(args.judges) / "judge.safetensors").is_file():
        _print_mu_real(args.out, args.judges)
    else:
        print(f"no judges in {args.judges}: run `idglow synth train-judges`, then `idglow synth mu-real --data {args.out}`")
    print(f"wrote manifests to {args.out}")
    return 0


def cmd_synth_mu_real(args: argparse.Namespace) -> int:
    """Compute mu_real of the benchmarks of a built cast."""
    _print_mu_real(args.data, args.judges)
    return 0


def cmd_synth_preview(args: argparse.Namespace) -> int:
    """Write a contact sheet of identities, children, groups and mini-adults."""
    from idglow.cast.preview import write_preview

    print(f"wrote {write_preview(args.out, load('synth', args).world, args.seed)}")
    return 0


def cmd_synth_train_judges(args: argparse.Namespace) -> int:
    """Train the cast's judges on training identities; report on held-out identities."""
    from idglow.cast.judge_training import train_all

    cfg = load("synth", args)
    w = cfg.world
    report = train_all(Path(args.out), w.seed, w.width, w.height, w.ids("train"), w.ids("heldout"), cfg.judges,
                       max_people=w.max_people)
    print(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=2))
    print(f"wrote judges and report.json to {args.out}")
    return 0


def cmd_synth_train_embedder(args: argparse.Namespace) -> int:
    """Train one more identity embedder for the identity loss, beside the judges."""
    from idglow.cast.judge_training import train_extra_embedder

    cfg = load("synth", args)
    w = cfg.world
    result = train_extra_embedder(Path(args.out), args.name, args.arch, args.seed, w.seed, w.width, w.height,
                                  w.ids("train"), w.ids("heldout"), cfg.judges,
                                  adversarial_eps=args.adversarial_eps, max_people=w.max_people)
    print(json.dumps(result, indent=2))
    print(f"wrote {Path(args.out) / (args.name + '.safetensors')} and its entry in report.json's extra_embedders")
    return 0


def register(sub) -> None:
    """``idglow synth build | mu-real | preview | train-judges | train-embedder``."""
    synth = group(sub, "synth", "the synthetic cast: build datasets, train judges, preview",
                  "The synthetic cast (a procedural world of identities, ages and groups). "
                  "Configuration: --config synth.yaml and --world.* / --build.* / --judges.* overrides.")
    p = command(synth, "build", cmd_synth_build, "render SFT sets, benchmarks (synth-group, synth-age) and mini-adults",
                config=SYNTH_CONFIG, full_name="synth build")
    p.add_argument("--out", default=CAST, help=f"output folder (default: {CAST})")
    p.add_argument("--judges", default=JUDGES, help=f"judges for mu_real (default: {JUDGES})")
    p = command(synth, "mu-real", cmd_synth_mu_real, "compute mu_real (judge FaceSim of true renders) of built benchmarks",
                full_name="synth mu-real")
    p.add_argument("--data", default=CAST, help=f"a folder written by `synth build` (default: {CAST})")
    p.add_argument("--judges", default=JUDGES, help=f"trained judges (default: {JUDGES})")
    p = command(synth, "preview", cmd_synth_preview, "write a contact sheet of identities, children, groups and mini-adults",
                config=SYNTH_CONFIG, full_name="synth preview")
    p.add_argument("--out", default="runs/cast-preview.png", help="PNG path (default: runs/cast-preview.png)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    p = command(synth, "train-judges", cmd_synth_train_judges,
                "train the face detector, the two identity embedders and the age and colour classifiers",
                config=SYNTH_CONFIG, full_name="synth train-judges")
    p.add_argument("--out", default=JUDGES, help=f"output folder (default: {JUDGES})")
    p = command(synth, "train-embedder", cmd_synth_train_embedder,
                "train one more identity embedder (training identities only) for the identity loss's ensemble",
                config=SYNTH_CONFIG, full_name="synth train-embedder")
    p.add_argument("--name", required=True,
                   help="its name: <out>/<name>.safetensors, listed in identity_loss.extra_embedders")
    p.add_argument("--arch", choices=("resnet", "plain", "spatial"), default="spatial",
                   help="resnet: the encoder's; plain: the judge's; spatial: the encoder's blocks with a flattened "
                        "head, which keeps where features lie (default: spatial)")
    p.add_argument("--seed", type=non_negative_int, default=37, help="its training seed (default: 37)")
    p.add_argument("--adversarial-eps", type=float, default=0.0, metavar="EPS",
                   help="train on adversarial crops within an L-inf ball of this radius ([-1, 1] pixel units, e.g. "
                        "0.06 = 8/255 of the range): a robust embedder, whose gradients move features a person "
                        "sees rather than texture; about 4x the training time (default: 0, plain training)")
    p.add_argument("--out", default=JUDGES, help=f"the judges folder it joins (default: {JUDGES})")
