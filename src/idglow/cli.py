"""The ``idglow`` command line.

Every subcommand that builds a model takes ``--config model.yaml`` plus ``--key value`` overrides of
the model configuration (``idglow config`` lists every key with its help).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DESCRIPTION = """IdGlow: multi-subject, identity-preserving generation on flow-matching transformers
(diffusers FLUX), with task-adaptive identity gating (group photos; adults rendered as children)."""

EPILOG = """model configuration: --config FILE.yaml, then any --dotted.key value override, e.g.
  idglow schedules --plot lam.png --identity.gate.age.sigma_lo 0.2 --identity.gate.age.edge_width 0
Run `idglow config [--kind model|train|synth|vae]` to list every key with its type, default and help."""


# Commands without a configuration: a leftover --key value is a typo, not an override.
NO_CONFIG_COMMANDS = ("demo", "train export", "train base-eval", "train sft-eval", "synth mu-real", "generate", "eval", "bench build",
                      "prompts refine", "prompts caption", "data shard", "flux tiny-folder")


def _quiet_libraries() -> None:
    # transformers warns at import that torchvision is absent (we never use its image processors).
    import transformers

    transformers.logging.set_verbosity_error()


def _model_config(args: argparse.Namespace):
    from idglow.config import load_config
    from idglow.models import ModelConfig

    return load_config(ModelConfig, args.config, args.overrides)


def _synth_config(args: argparse.Namespace):
    from idglow.cast.config import SynthConfig
    from idglow.config import load_config

    return load_config(SynthConfig, args.config, args.overrides)


def cmd_synth_build(args: argparse.Namespace) -> int:
    """Render the cast's datasets and benchmarks; compute mu_real when judges are available."""
    import json

    from idglow.cast.build import build

    cfg = _synth_config(args)
    summary = build(Path(args.out), cfg)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    judges_dir = Path(args.judges)
    if (judges_dir / "judge.safetensors").is_file():
        from idglow.cast.judge_training import load_judges
        from idglow.cast.mu_real import write_mu_real

        for name, result in write_mu_real(args.out, load_judges(judges_dir)).items():
            print(f"{name}: mu_real = {result['mu_real']:.4f} by group size {result['by_group_size']}")
    else:
        print(f"no judges in {judges_dir}: run `idglow synth train-judges`, then `idglow synth mu-real --data {args.out}`")
    print(f"wrote manifests to {args.out}")
    return 0


def cmd_synth_mu_real(args: argparse.Namespace) -> int:
    """Compute mu_real of the benchmarks of a built cast."""
    from idglow.cast.judge_training import load_judges
    from idglow.cast.mu_real import write_mu_real

    for name, result in write_mu_real(args.data, load_judges(args.judges)).items():
        print(f"{name}: mu_real = {result['mu_real']:.4f} by group size {result['by_group_size']}")
    return 0


def cmd_synth_preview(args: argparse.Namespace) -> int:
    """Write a contact sheet of identities, children, groups and mini-adults."""
    from idglow.cast.preview import write_preview

    print(f"wrote {write_preview(args.out, _synth_config(args).world, args.seed)}")
    return 0


def cmd_train_base(args: argparse.Namespace) -> int:
    """Train the base text-to-image model (captions only); resumes from the run folder's checkpoints."""
    from idglow.config import load_config
    from idglow.train.config import TrainConfig
    from idglow.train.loop import Trainer

    record = Trainer(load_config(TrainConfig, args.config, args.overrides)).run()
    print(f"done: step {record.get('step')}, loss {record.get('loss', float('nan')):.4f}")
    return 0


def cmd_train_sft(args: argparse.Namespace) -> int:
    """Stage 1: train the identity branch on a frozen base model; resumes from the run folder's checkpoints."""
    from idglow.config import load_config
    from idglow.train.sft import SFTTrainer
    from idglow.train.sft_config import SFTConfig

    record = SFTTrainer(load_config(SFTConfig, args.config, args.overrides)).run()
    print(f"done: step {record.get('step')}, loss {record.get('loss', float('nan')):.4f}, "
          f"identity similarity {record.get('id_sim', float('nan')):.3f}")
    return 0


def cmd_train_sft_eval(args: argparse.Namespace) -> int:
    """Generate the cast benchmarks with an SFT run and score them with the judges."""
    import json

    from idglow.train.sft_eval import evaluate_sft

    default = "eval-no-identity" if args.no_identity else "eval" if args.id_guidance == 1 else f"eval-g{args.id_guidance:g}"
    out = args.out or str(Path(args.run) / default)
    results = evaluate_sft(args.run, args.benchmark, out, judges=args.judges, identity=not args.no_identity,
                           limit=args.limit, steps=args.steps, seed=args.seed, id_guidance=args.id_guidance)
    keys = ("facesim", "facesim_norm", "count_accuracy", "child_rate", "mini_adult_rate", "leakage_rate", "colour_accuracy")
    print(json.dumps({name: {k: m[k] for k in keys if k in m} for name, m in results.items()}, indent=2))
    print(f"wrote {out}/<benchmark>.json and .png")
    return 0


def cmd_train_vae(args: argparse.Namespace) -> int:
    """Train the small latent autoencoder on cast images."""
    import json

    from idglow.config import load_config
    from idglow.train.vae import VaeConfig, train_vae

    stats = train_vae(load_config(VaeConfig, args.config, args.overrides))
    print(json.dumps({k: v for k, v in stats.items() if k != "config"}, indent=2))
    return 0


def cmd_train_base_eval(args: argparse.Namespace) -> int:
    """Score a finished base run's samples on held-out captions with the cast judges."""
    import json

    from idglow.train.base_eval import evaluate_base

    result = evaluate_base(args.run, args.manifest, args.judges, num=args.num, steps=args.steps, seed=args.seed)
    print(json.dumps(result, indent=2))
    print(f"wrote {args.run}/eval.json and eval_samples.png")
    return 0


def cmd_train_export(args: argparse.Namespace) -> int:
    """Export a finished base run as fp16 safetensors with its provenance (command, commit, wall time)."""
    import json
    import subprocess

    from idglow.train.base_eval import export_base

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    provenance = export_base(args.run, args.out, args.train_command_line, commit)
    print(json.dumps({k: v for k, v in provenance.items() if k != "train_config"}, indent=2))
    return 0


def cmd_synth_train_judges(args: argparse.Namespace) -> int:
    """Train the cast's judges on training identities; report on held-out identities."""
    import json

    from idglow.cast.judge_training import train_all

    cfg = _synth_config(args)
    w = cfg.world
    report = train_all(Path(args.out), w.seed, w.width, w.height, w.ids("train"), w.ids("heldout"), cfg.judges)
    print(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=2))
    print(f"wrote judges and report.json to {args.out}")
    return 0


def _config_class(kind: str):
    """The config dataclass behind ``idglow config --kind``."""
    if kind == "model":
        from idglow.models import ModelConfig

        return ModelConfig
    if kind == "train":
        from idglow.train.config import TrainConfig

        return TrainConfig
    if kind == "sft":
        from idglow.train.sft_config import SFTConfig

        return SFTConfig
    if kind == "dpo":
        from idglow.train.dpo_config import DPOConfig

        return DPOConfig
    if kind == "pairs":
        from idglow.pairs.scoring import PairScoring

        return PairScoring
    if kind == "synth":
        from idglow.cast.config import SynthConfig

        return SynthConfig
    from idglow.train.vae import VaeConfig

    return VaeConfig


def cmd_config(args: argparse.Namespace) -> int:
    """Print a resolved config as YAML, then every key with its type, default and help."""
    import yaml

    from idglow.config import format_help, load_config, to_dict

    cls = _config_class(args.kind)
    print(yaml.safe_dump(to_dict(load_config(cls, args.config, args.overrides)), sort_keys=False).rstrip())
    if not args.quiet:
        print("\n# keys (override with --key value):")
        print(format_help(cls))
    return 0


def cmd_schedules(args: argparse.Namespace) -> int:
    """Plot and tabulate lambda(sigma) for every task of the gate."""
    from idglow.models.gate import DynamicsAwareGate
    from idglow.plots import describe_schedule, gate_curves, plot_gate

    config = _model_config(args)
    gate = DynamicsAwareGate(config.identity.gate)
    if args.identity_branch:
        gate = _load_gate(Path(args.identity_branch))
    sigma, curves = gate_curves(gate, num=11)
    print("sigma   " + " ".join(f"{s:5.2f}" for s in sigma.tolist()))
    for task, lam in curves.items():
        print(f"{task:<7} " + " ".join(f"{v:5.2f}" for v in lam.tolist()) + f"   ({describe_schedule(gate.config, task)})")
    if args.plot:
        print(f"wrote {plot_gate(gate, args.plot)}")
    return 0


def _load_gate(directory: Path):
    """The gate of a saved identity branch (its config and, for learned schedules, its weights)."""
    import json

    from safetensors.torch import load_file

    from idglow.config import from_dict
    from idglow.models import IdentityConfig
    from idglow.models.gate import DynamicsAwareGate
    from idglow.models.io import IDENTITY_CONFIG, IDENTITY_WEIGHTS

    config = from_dict(IdentityConfig, json.loads((directory / IDENTITY_CONFIG).read_text()))
    gate = DynamicsAwareGate(config.gate)
    state = {k[len("gate."):]: v for k, v in load_file(str(directory / IDENTITY_WEIGHTS)).items() if k.startswith("gate.")}
    gate.load_state_dict(state, strict=True)
    return gate


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole method on the synthetic cast, ending in report.html."""
    from idglow.demo import run_demo

    run_demo(args.out, preset=args.preset, force=args.force, base=args.base, judges=args.judges)
    return 0


def _add_train_commands(sub) -> None:
    """``idglow train base | base-eval | export | vae | sft | sft-eval | dpo``."""
    train = sub.add_parser("train", help="training stages", description="Training stages. Configuration: --config "
                           "FILE.yaml and --dotted.key overrides (e.g. --optim.steps 100); re-running resumes.")
    train_sub = train.add_subparsers(dest="train_command", metavar="STAGE", required=True)
    p = train_sub.add_parser("base", help="the base text-to-image model of the cast (captions only, no identity branch)",
                             description="Train the base text-to-image model: the backbone on captioned images. "
                             "Re-running the same command resumes from the newest checkpoint.")
    p.add_argument("--config", metavar="FILE", help="train config YAML, e.g. configs/synth-base.yaml (keys: idglow config --kind train)")
    p.set_defaults(func=cmd_train_base, command="train base")
    p = train_sub.add_parser("export", help="export a finished base run as fp16 safetensors with its provenance",
                             description="Write RUN's final transformer as an fp16 diffusers folder under OUT, with "
                             "provenance.json (training command, commit, steps, wall time, evaluation).")
    p.add_argument("--run", required=True, help="a finished run folder of `idglow train base`")
    p.add_argument("--out", default="assets/base", help="output folder (default: assets/base)")
    p.add_argument("--train-command-line", default="idglow train base --config configs/synth-base.yaml",
                   help="the command that trained the run, recorded in provenance.json")
    p.set_defaults(func=cmd_train_export, command="train export")
    p = train_sub.add_parser("vae", help="a small latent autoencoder (diffusers AutoencoderKL) on cast images",
                             description="Train a small diffusers AutoencoderKL on cast images (for representation.kind: latents).")
    p.add_argument("--config", metavar="FILE", help="vae config YAML, e.g. configs/synth-vae.yaml (keys: idglow config --kind vae)")
    p.set_defaults(func=cmd_train_vae, command="train vae")
    p = train_sub.add_parser("base-eval", help="score a base run's samples on held-out captions with the cast judges",
                             description="Sample held-out captions with a finished base run and report the judges' face "
                             "detection rate, count accuracy and Fréchet distance in judge features to the true renders.")
    p.add_argument("--run", required=True, help="a run folder of `idglow train base`")
    p.add_argument("--manifest", action="append", help="held-out SFT manifests (repeatable; default: data/cast/sft-*-heldout.jsonl)")
    p.add_argument("--judges", default="assets/judges", help="trained judges (default: assets/judges)")
    p.add_argument("--num", type=int, default=200, help="captions to sample (default: 200)")
    p.add_argument("--steps", type=int, default=24, help="Euler steps (default: 24)")
    p.add_argument("--seed", type=int, default=0, help="seed of caption choice and noise (default: 0)")
    p.set_defaults(func=cmd_train_base_eval, command="train base-eval", manifest=None)
    p = train_sub.add_parser("sft", help="stage 1: the identity branch on the frozen base model (identity loss, gates)",
                             description="Train the identity branch (and optional backbone LoRA) on SFT scenes from the "
                             "shipped base model: flow matching plus the identity loss on x0_hat, task-adaptive gate. "
                             "Logs the held-out binding diagnostic (true vs shuffled vs no references). "
                             "Re-running the same command resumes from the newest checkpoint.")
    p.add_argument("--config", metavar="FILE", help="SFT config YAML, e.g. configs/synth-sft.yaml (keys: idglow config --kind sft)")
    p.set_defaults(func=cmd_train_sft, command="train sft")
    p = train_sub.add_parser("sft-eval", help="generate the cast benchmarks with an SFT run and score them with the judges",
                             description="Generate every record of the cast benchmarks with a finished SFT run and report "
                             "FaceSim (raw and / mu_real), count accuracy, child and mini-adult rates (age task), "
                             "leakage rate and colour accuracy.")
    p.add_argument("--run", required=True, help="a finished run folder of `idglow train sft` or `train dpo`")
    p.add_argument("--benchmark", action="append", help="benchmark manifests (repeatable; default: data/cast/synth-group.jsonl "
                   "and synth-age.jsonl)")
    p.add_argument("--out", help="output folder (default: RUN/eval, RUN/eval-no-identity or RUN/eval-gG)")
    p.add_argument("--no-identity", action="store_true", help="sample with the identity branch off (text-only baseline)")
    p.add_argument("--judges", default="assets/judges", help="judges that score (default: assets/judges)")
    p.add_argument("--limit", type=int, help="score N records of each benchmark, evenly spread over it (all group sizes)")
    p.add_argument("--steps", type=int, default=20, help="Euler steps (default: 20)")
    p.add_argument("--id-guidance", type=float, default=1.0,
                   help="identity guidance scale g: v_none + g (v_id - v_none); 1 = off, >1 costs a second forward")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.set_defaults(func=cmd_train_sft_eval, command="train sft-eval", benchmark=None)
    from idglow.cli_dpo import add_dpo_train_command

    add_dpo_train_command(train_sub)


def _add_synth_commands(sub) -> None:
    """``idglow synth build | mu-real | preview | train-judges``."""
    synth = sub.add_parser("synth", help="the synthetic cast: build datasets, train judges, preview",
                           description="The synthetic cast (a procedural world of identities, ages and groups). "
                           "Configuration: --config synth.yaml and --world.* / --build.* / --judges.* overrides.")
    synth_sub = synth.add_subparsers(dest="synth_command", metavar="SYNTH_COMMAND", required=True)

    def add_synth(name: str, func, help: str) -> argparse.ArgumentParser:
        p = synth_sub.add_parser(name, help=help, description=help)
        p.add_argument("--config", metavar="FILE", help="synth config YAML (default: built-in defaults)")
        p.set_defaults(func=func, command=f"synth {name}")
        return p

    p = add_synth("build", cmd_synth_build, "render SFT sets, benchmarks (synth-group, synth-age) and mini-adults")
    p.add_argument("--out", default="data/cast", help="output folder (default: data/cast)")
    p.add_argument("--judges", default="assets/judges", help="judges for mu_real (default: assets/judges)")
    p = add_synth("mu-real", cmd_synth_mu_real, "compute mu_real (judge FaceSim of true renders) of built benchmarks")
    p.add_argument("--data", default="data/cast", help="a folder written by `synth build` (default: data/cast)")
    p.add_argument("--judges", default="assets/judges", help="trained judges (default: assets/judges)")
    p = add_synth("preview", cmd_synth_preview, "write a contact sheet of identities, children, groups and mini-adults")
    p.add_argument("--out", default="runs/cast-preview.png", help="PNG path (default: runs/cast-preview.png)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p = add_synth("train-judges", cmd_synth_train_judges,
                  "train the face detector, the two identity embedders and the age and colour classifiers")
    p.add_argument("--out", default="assets/judges", help="output folder (default: assets/judges)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idglow", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--config", metavar="FILE", help="model config YAML (default: built-in defaults)")
        p.set_defaults(func=func)
        return p

    p = add("config", cmd_config, "print a resolved configuration and every key's help (model, train, sft, synth or vae)")
    p.add_argument("--kind", choices=["model", "train", "sft", "dpo", "pairs", "synth", "vae"], default="model",
                   help="which configuration: model (default), train (`train base`), sft (`train sft`), dpo (`train dpo`), "
                   "pairs (scoring of `pairs build`), synth (`synth ...`), vae (`train vae`)")
    p.add_argument("--quiet", action="store_true", help="print only the resolved YAML")
    p = add("schedules", cmd_schedules, "tabulate and plot the gate's lambda(sigma) for every task")
    p.add_argument("--plot", metavar="PNG", help="write the figure here")
    p.add_argument("--identity-branch", metavar="DIR", help="use the gate of a saved identity branch (learned gates)")
    p = sub.add_parser("demo", help="the whole method on the synthetic cast, ending in a report (report.html)",
                       description="Build the cast, train the judges and the autoencoder, run SFT from the shipped base "
                       "model, build DPO pairs, run DPO, one prompt-refine round, evaluate both held-out benchmarks, and "
                       "write OUT/report.html. Re-running reuses finished stages; --force redoes them. Preset default: "
                       "about 30 minutes on 2 CPU cores; quick: a few minutes (a smoke run, barely trained models).")
    p.add_argument("--preset", choices=["default", "quick"], default="default", help="sizes and budgets (default: default)")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--force", action="store_true", help="redo every stage instead of reusing finished ones")
    p.add_argument("--base", default="assets/base", help="the shipped base model (default: assets/base)")
    p.add_argument("--judges", default="assets/judges", help="shipped judges, used when the preset does not train them")
    p.set_defaults(func=cmd_demo, command="demo")

    _add_train_commands(sub)
    _add_synth_commands(sub)
    from idglow.cli_eval import add_eval_commands

    add_eval_commands(sub, EPILOG)
    from idglow.cli_prompts import add_prompt_commands

    add_prompt_commands(sub, EPILOG)
    from idglow.cli_dpo import add_pairs_commands

    add_pairs_commands(sub, EPILOG)
    from idglow.cli_data import add_data_commands

    add_data_commands(sub, EPILOG)
    return parser


def main(argv: list[str] | None = None) -> int:
    from idglow.config import ConfigError

    parser = build_parser()
    args, overrides = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.overrides = overrides
    if args.command in NO_CONFIG_COMMANDS and overrides:
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    if args.command == "train base-eval":
        args.manifest = args.manifest or ["data/cast/sft-group-heldout.jsonl", "data/cast/sft-age-heldout.jsonl"]
    if args.command == "train sft-eval":
        args.benchmark = args.benchmark or ["data/cast/synth-group.jsonl", "data/cast/synth-age.jsonl"]
    _quiet_libraries()
    try:
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError, ImportError) as err:  # ManifestError is a ValueError
        print(f"idglow {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
