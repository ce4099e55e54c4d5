"""The ``idglow`` command line: one parser assembled from the command groups of :mod:`idglow.cli`.

Each group module registers its subcommands (:mod:`idglow.cli.registry`); a command that reads a
configuration takes ``--config FILE.yaml`` plus ``--dotted.key value`` overrides, and for every other
command a leftover ``--key value`` is an error. Library errors (bad values, data, files, configs) end as one
line naming the command and what is wrong, exit status 2; ``IDGLOW_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DESCRIPTION = """IdGlow: multi-subject, identity-preserving generation on flow-matching transformers
(diffusers FLUX), with task-adaptive identity gating (group photos; adults rendered as children)."""


def _quiet_libraries() -> None:
    # transformers warns at import that torchvision is absent (we never use its image processors).
    import transformers

    transformers.logging.set_verbosity_error()


def _plain_warnings() -> None:
    """idglow's own warnings (counted skips and the like) print as ``warning: <message>``: they name the file
    themselves, and the source line Python adds would only be noise to a user. Other libraries' keep their format."""
    default = warnings.formatwarning

    def format_warning(message, category, filename, lineno, line=None):
        if f"{os.sep}idglow{os.sep}" in filename:
            return f"warning: {message}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning


def build_parser() -> argparse.ArgumentParser:
    """The whole ``idglow`` parser, every group registered in the order ``--help`` lists them."""
    from idglow.cli import config, data, demo, eval, pairs, prompts, serve, synth, train
    from idglow.cli.registry import EPILOG

    parser = argparse.ArgumentParser(prog="idglow", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (config, demo, serve, train, synth, eval, prompts, pairs, data):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``idglow`` with ``argv`` (default: the process's); returns the exit status."""
    from idglow.utils.config import ConfigError

    parser = build_parser()
    args, overrides = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if overrides and not args.takes_config:
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    args.overrides = overrides
    _quiet_libraries()
    _plain_warnings()
    try:
        return args.func(args)
    except (ConfigError, ValueError, OSError, ImportError) as err:  # ManifestError is a ValueError
        if os.environ.get("IDGLOW_DEBUG"):
            raise
        print(f"idglow {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
