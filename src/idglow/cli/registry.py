"""How a command group adds its subcommands to the ``idglow`` parser.

Each module of :mod:`idglow.cli` has a ``register(sub)`` that adds its group; every subcommand is declared
through :func:`command`, which records its handler and whether it reads a configuration. A command that
reads one gets ``--config FILE.yaml`` and accepts ``--dotted.key value`` overrides; for any other command a
leftover ``--key value`` is an error (a typo, not an override).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

EPILOG = """configuration: --config FILE.yaml, then any --dotted.key value override, e.g.
  idglow schedules --plot lam.png --identity.gate.age.sigma_lo 0.2 --identity.gate.age.edge_width 0
Run `idglow config --kind model|train|sft|dpo|pairs|synth|vae|photos` to list every key with its type, default and help."""


def group(sub, name: str, help: str, description: str | None = None):
    """A command group (``idglow NAME ...``); returns the subparsers its commands are added to."""
    parser = sub.add_parser(name, help=help, description=description or help)
    return parser.add_subparsers(dest=f"{name}_command", metavar=f"{name.upper()}_COMMAND", required=True)


def command(sub, name: str, func: Callable[[argparse.Namespace], int], help: str, description: str | None = None,
            config: str | None = None, full_name: str | None = None) -> argparse.ArgumentParser:
    """Add subcommand ``name`` to ``sub`` and return its parser for its own arguments.

    Args:
        func: the handler, ``func(args) -> exit status``; ``args.overrides`` holds the config overrides.
        help, description: the one-line help in the group's list and the text of ``--help``.
        config: when the command reads a configuration, the help of its ``--config`` (which kind, an example).
        full_name: how errors name the command (default: ``name``; a group's commands pass ``"group name"``).
    """
    parser = sub.add_parser(name, help=help, description=description or help,
                            epilog=EPILOG if config else None, formatter_class=argparse.RawDescriptionHelpFormatter)
    if config:
        parser.add_argument("--config", metavar="FILE", help=config)
    parser.set_defaults(func=func, command=full_name or name, takes_config=config is not None)
    return parser


def _number(kind: type, minimum: float, exclusive: bool):
    what = f"{'an integer' if kind is int else 'a number'} {'>' if exclusive else '>='} {minimum:g}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (exclusive and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its message
    return parse


positive_int = _number(int, 0, exclusive=True)            # counts and sizes: --steps, --batch, --limit, ...
non_negative_int = _number(int, 0, exclusive=False)       # seeds, retries
positive_float = _number(float, 0.0, exclusive=True)      # timeouts, scales
non_negative_float = _number(float, 0.0, exclusive=False)  # identity guidance (0 = identity off, 1 = no guidance)


def guidance_interval_option(parser: argparse.ArgumentParser, default_text: str) -> None:
    """``--id-guidance-interval SIGMA_LO SIGMA_HI``: identity guidance only at the steps whose sigma lies in it."""
    parser.add_argument("--id-guidance-interval", type=non_negative_float, nargs=2, metavar=("SIGMA_LO", "SIGMA_HI"),
                        help="guide only at the steps whose sigma lies in [SIGMA_LO, SIGMA_HI], 0 <= SIGMA_LO <= SIGMA_HI "
                             f"<= 1 (outside it a step costs one forward; default: {default_text})")


def check_guidance_interval(values: list[float] | None) -> None:
    """Refuse an interval out of order or past sigma 1, before any model loads."""
    if values is not None and not values[0] <= values[1] <= 1.0:
        raise ValueError(f"id-guidance-interval: expected 0 <= SIGMA_LO <= SIGMA_HI <= 1, got {values[0]:g} {values[1]:g}")


def device_option(parser: argparse.ArgumentParser, what: str = "") -> None:
    """``--device``: where the model runs (read back with :func:`chosen_device`)."""
    parser.add_argument("--device", help=f"{what}cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)")


def chosen_device(choice: str | None) -> str:
    """``--device`` as given, else ``cuda`` when torch sees a GPU, else ``cpu``.

    Raises:
        ValueError: naming ``--device`` when torch cannot parse it, or when it names a CUDA device torch cannot see.
    """
    import torch  # here, so that `idglow --help` does not import torch

    if not choice:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise ValueError(f"--device: {choice!r} is not a device; expected cpu, cuda, cuda:1, ...") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            raise ValueError(f"--device: {choice} is not available here (torch {torch.__version__} sees {count} CUDA "
                             "device(s)); use --device cpu")
    return choice
