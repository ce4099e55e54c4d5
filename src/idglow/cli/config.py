"""``idglow config`` and ``idglow schedules``: configurations and the gate's lambda(sigma)."""

from __future__ import annotations

import argparse
from pathlib import Path

from idglow.cli.registry import command

CONFIG_KINDS = ("model", "train", "sft", "dpo", "pairs", "synth", "vae", "photos")


def config_class(kind: str) -> type:
    """The config dataclass behind ``idglow config --kind``."""
    if kind == "model":
        from idglow.models import ModelConfig

        return ModelConfig
    if kind == "train":
        from idglow.recipes.train import TrainConfig

        return TrainConfig
    if kind == "sft":
        from idglow.recipes.sft import SFTConfig

        return SFTConfig
    if kind == "dpo":
        from idglow.recipes.dpo import DPOConfig

        return DPOConfig
    if kind == "pairs":
        from idglow.eval.group_score import PairScoring

        return PairScoring
    if kind == "photos":
        from idglow.photos.build import PhotoBuildOptions

        return PhotoBuildOptions
    if kind == "synth":
        from idglow.cast.config import SynthConfig

        return SynthConfig
    from idglow.base.vae import VaeConfig

    return VaeConfig


def load(kind: str, args: argparse.Namespace):
    """The ``kind`` config of a command: ``--config`` then the ``--key value`` overrides."""
    from idglow.utils.config import load_config

    return load_config(config_class(kind), args.config, args.overrides)


def cmd_config(args: argparse.Namespace) -> int:
    """Print a resolved config as YAML, then every key with its type, default and help."""
    import yaml

    from idglow.utils.config import format_help, to_dict

    print(yaml.safe_dump(to_dict(load(args.kind, args)), sort_keys=False).rstrip())
    if not args.quiet:
        print("\n# keys (override with --key value):")
        print(format_help(config_class(args.kind)))
    return 0


def cmd_schedules(args: argparse.Namespace) -> int:
    """Plot and tabulate lambda(sigma) for every task of the gate."""
    from idglow.eval.plots import describe_schedule, gate_curves, plot_gate
    from idglow.identity.gate import DynamicsAwareGate
    from idglow.models.io import load_gate

    gate = DynamicsAwareGate(load("model", args).identity.gate)
    if args.identity_branch:
        gate = load_gate(Path(args.identity_branch))
    sigma, curves = gate_curves(gate, num=11)
    print("sigma   " + " ".join(f"{s:5.2f}" for s in sigma.tolist()))
    for task, lam in curves.items():
        print(f"{task:<7} " + " ".join(f"{v:5.2f}" for v in lam.tolist()) + f"   ({describe_schedule(gate.config, task)})")
    if args.plot:
        print(f"wrote {plot_gate(gate, args.plot)}")
    return 0


def register(sub) -> None:
    """``idglow config`` and ``idglow schedules``."""
    p = command(sub, "config", cmd_config, "print a resolved configuration and every key's help (model, train, sft, ...)",
                config="a config YAML of that kind (default: built-in defaults)")
    p.add_argument("--kind", choices=CONFIG_KINDS, default="model",
                   help="which configuration: model (default), train (`train base`), sft (`train sft`), dpo (`train dpo`), "
                   "pairs (scoring of `pairs build`), synth (`synth ...`), vae (`train vae`)")
    p.add_argument("--quiet", action="store_true", help="print only the resolved YAML")
    p = command(sub, "schedules", cmd_schedules, "tabulate and plot the gate's lambda(sigma) for every task",
                config="model config YAML (default: built-in defaults)")
    p.add_argument("--plot", metavar="PNG", help="write the figure here")
    p.add_argument("--identity-branch", metavar="DIR", help="use the gate of a saved identity branch (learned gates)")
