"""``idglow train``: the training stages (base, export, base-eval, vae, sft, sft-eval, dpo). Re-running resumes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

from idglow.cli.config import load
from idglow.cli.registry import (check_guidance_interval, chosen_device, command, device_option, group,
                                 guidance_interval_option, non_negative_float, non_negative_int, positive_int)
from idglow.utils.defaults import BASE, BENCHMARKS, IDGLOW_MODEL, JUDGES, SFT_HELDOUT


def _report(line: str) -> None:
    """Print a run's closing line once: from the first process of a distributed launch (each logs its own last
    micro-batches; the run's log.jsonl is process 0's)."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(line)


def cmd_train_base(args: argparse.Namespace) -> int:
    """Train the base text-to-image model (captions only); resumes from the run folder's checkpoints."""
    from idglow.base.trainer import BaseTrainer

    record = BaseTrainer(load("train", args)).run()
    _report(f"done: step {record.get('step')}, loss {record.get('loss', float('nan')):.4f}")
    return 0


def cmd_train_sft(args: argparse.Namespace) -> int:
    """Stage 1: train the identity branch on a frozen base model; resumes from the run folder's checkpoints."""
    from idglow.sft.trainer import SFTTrainer

    record = SFTTrainer(load("sft", args)).run()
    _report(f"done: step {record.get('step')}, loss {record.get('loss', float('nan')):.4f}, "
            f"identity similarity {record.get('id_sim', float('nan')):.3f}")
    return 0


def cmd_train_dpo(args: argparse.Namespace) -> int:
    """Stage 2: Flow-DPO of a LoRA policy on an SFT run; resumes from the run folder's checkpoints."""
    from idglow.dpo.trainer import DPOTrainer

    record = DPOTrainer(load("dpo", args)).run()
    _report(f"done: step {record.get('step')}, loss {record.get('loss', float('nan')):.4f}, "
            f"implicit accuracy {record.get('implicit_acc', float('nan')):.3f}, "
            f"reward margin {record.get('reward_margin', float('nan')):.3f}")
    return 0


def cmd_train_sft_eval(args: argparse.Namespace) -> int:
    """Generate the cast benchmarks with an SFT run and score them with the judges."""
    from idglow.eval.run_eval import evaluate_sft

    check_guidance_interval(args.id_guidance_interval)
    default = "eval-no-identity" if args.no_identity else "eval" if args.id_guidance == 1 else f"eval-g{args.id_guidance:g}"
    if args.id_guidance_interval:
        default += "-interval-{:g}-{:g}".format(*args.id_guidance_interval)
    if args.id_scale != 1.0:
        default += f"-scale{args.id_scale:g}"
    default += "".join(f"-{item.replace('=', '-')}" for item in args.schedule or ()) + ("-complement" if args.complement else "")
    default += f"-max{args.max_people}" if args.max_people else ""
    if args.complement and args.limit is None:
        raise ValueError("--complement needs --limit N (it scores the records --limit N leaves out)")
    out = args.out or str(Path(args.run) / default)
    results = evaluate_sft(args.run, args.benchmark or BENCHMARKS, out, judges=args.judges, identity=not args.no_identity,
                           limit=args.limit, steps=args.steps, seed=args.seed, id_guidance=args.id_guidance,
                           id_guidance_interval=args.id_guidance_interval, schedule=args.schedule or (), id_scale=args.id_scale,
                           complement=args.complement, max_people=args.max_people,
                           device=chosen_device(args.device))
    keys = ("facesim", "facesim_norm", "count_accuracy", "child_rate", "mini_adult_rate", "leakage_rate", "colour_accuracy")
    print(json.dumps({name: {k: m[k] for k in keys if k in m} for name, m in results.items()}, indent=2))
    print(f"wrote {out}/<benchmark>.json and .png")
    return 0


def cmd_train_vae(args: argparse.Namespace) -> int:
    """Train the small latent autoencoder on cast images."""
    from idglow.base.vae import train_vae

    stats = train_vae(load("vae", args))
    print(json.dumps({k: v for k, v in stats.items() if k != "config"}, indent=2))
    return 0


def cmd_train_base_eval(args: argparse.Namespace) -> int:
    """Score a finished base run's samples on held-out captions with the cast judges."""
    from idglow.eval.base_eval import evaluate_base

    result = evaluate_base(args.run, args.manifest or SFT_HELDOUT, args.judges, num=args.num, steps=args.steps, seed=args.seed)
    print(json.dumps(result, indent=2))
    print(f"wrote {args.run}/eval.json and eval_samples.png")
    return 0


def cmd_train_export(args: argparse.Namespace) -> int:
    """Export a finished base, SFT or DPO run as a self-contained model folder with its provenance."""
    from pathlib import Path

    from idglow.runs.export import export_base, export_dpo_scaled, export_idglow, export_sft_stage
    from idglow.runs.load import is_dpo_run

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    if args.dpo_scale is not None:
        if args.stage != "all" or not args.out or args.gallery:
            raise ValueError("--dpo-scale: give --out and no --stage or --gallery (the scaled model keeps its source's "
                             "gallery)")
        provenance = export_dpo_scaled(args.run, args.out, args.dpo_scale, args.train_command_line or
                                       f"idglow train export --run {args.run} --dpo-scale {args.dpo_scale:g} --out "
                                       f"{args.out}", commit, score_folders=args.scores)
        print(json.dumps({k: v for k, v in provenance.items() if not k.endswith("config")}, indent=2))
        return 0
    if args.stage == "sft":
        if not args.out or args.scores or args.gallery:
            raise ValueError("--stage sft: give --out (the peeled model is not the shipped one) and no --scores or "
                             "--gallery (scores of the SFT stage come from `idglow train sft-eval --run OUT`)")
        provenance = export_sft_stage(args.run, args.out, args.train_command_line or f"idglow train export --run "
                                      f"{args.run} --stage sft --out {args.out}", commit)
        print(json.dumps({k: v for k, v in provenance.items() if not k.endswith("config")}, indent=2))
        return 0
    if not (Path(args.run) / "config.json").is_file():
        raise FileNotFoundError(f"{args.run}: no config.json; not a run folder of `idglow train base`, `sft` or `dpo`")
    if not (is_dpo_run(args.run) or (Path(args.run) / "final" / "identity_branch.safetensors").is_file()):
        provenance = export_base(args.run, args.out or BASE, args.train_command_line or DEFAULT_BASE_COMMAND, commit)
    else:
        extra = None
        if args.gallery:
            from idglow.serve.gallery import gallery_from_cast, write_gallery

            entries = gallery_from_cast(args.gallery, size=12)

            def extra(folder: Path) -> None:
                write_gallery(entries, folder / "gallery")
        provenance = export_idglow(args.run, args.out or IDGLOW_MODEL, args.train_command_line or "(not recorded)",
                                   commit, score_folders=args.scores, extra=extra)
    print(json.dumps({k: v for k, v in provenance.items() if not k.endswith("config")}, indent=2))
    return 0


DEFAULT_BASE_COMMAND = "idglow train base --config configs/synth-base.yaml"


def register(sub) -> None:
    """``idglow train base | export | vae | base-eval | sft | sft-eval | dpo``."""
    train = group(sub, "train", "training stages", "Training stages. Configuration: --config FILE.yaml and --dotted.key "
                  "overrides (e.g. --optim.steps 100); re-running resumes.")
    command(train, "base", cmd_train_base, "the base text-to-image model of the cast (captions only, no identity branch)",
            "Train the base text-to-image model: the backbone on captioned images. Re-running the same command resumes "
            "from the newest checkpoint.", config="train config YAML, e.g. configs/synth-base.yaml (keys: idglow config "
            "--kind train)", full_name="train base")
    _register_export(train)
    command(train, "vae", cmd_train_vae, "a small latent autoencoder (diffusers AutoencoderKL) on cast images",
            "Train a small diffusers AutoencoderKL on cast images (for representation.kind: latents).",
            config="vae config YAML, e.g. configs/synth-vae.yaml (keys: idglow config --kind vae)", full_name="train vae")
    p = command(train, "base-eval", cmd_train_base_eval, "score a base run's samples on held-out captions with the cast judges",
                "Sample held-out captions with a finished base run and report the judges' face detection rate, count "
                "accuracy and Fréchet distance in judge features to the true renders.", full_name="train base-eval")
    p.add_argument("--run", required=True, help="a run folder of `idglow train base`")
    p.add_argument("--manifest", action="append",
                   help=f"held-out SFT manifests (repeatable; default: {' and '.join(SFT_HELDOUT)})")
    p.add_argument("--judges", default=JUDGES, help=f"trained judges (default: {JUDGES})")
    p.add_argument("--num", type=positive_int, default=200, help="captions to sample (default: 200)")
    p.add_argument("--steps", type=positive_int, default=24, help="Euler steps (default: 24)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of caption choice; caption i's noise uses seed + i (default: 0)")
    command(train, "sft", cmd_train_sft, "stage 1: the identity branch on the frozen base model (identity loss, gates)",
            "Train the identity branch (and optional backbone LoRA) on SFT scenes from the shipped base model: flow "
            "matching plus the identity loss on x0_hat, task-adaptive gate. Logs the held-out binding diagnostic (true "
            "vs shuffled vs no references). Re-running the same command resumes from the newest checkpoint.",
            config="SFT config YAML, e.g. configs/synth-sft.yaml (keys: idglow config --kind sft)", full_name="train sft")
    p = command(train, "sft-eval", cmd_train_sft_eval, "generate the cast benchmarks with an SFT run and score them with the judges",
                "Generate every record of the cast benchmarks with a finished SFT run and report FaceSim (raw and / "
                "mu_real), count accuracy, child and mini-adult rates (age task), leakage rate and colour accuracy.",
                full_name="train sft-eval")
    p.add_argument("--run", required=True, help="a finished run folder of `idglow train sft` or `train dpo`")
    p.add_argument("--benchmark", action="append", help=f"benchmark manifests (repeatable; default: {' and '.join(BENCHMARKS)})")
    p.add_argument("--out", help="output folder (default: RUN/eval, RUN/eval-no-identity or RUN/eval-gG, plus -KEY-VALUE "
                                 "for each --schedule)")
    p.add_argument("--no-identity", action="store_true", help="sample with the identity branch off (text-only baseline)")
    p.add_argument("--judges", default=JUDGES, help=f"judges that score (default: {JUDGES})")
    p.add_argument("--limit", type=positive_int, help="score N records of each benchmark, evenly spread over it (all group sizes)")
    p.add_argument("--complement", action="store_true",
                   help="score the records --limit N leaves out instead: a choice made on those N (a sampler, a "
                        "checkpoint) confirmed on records it never saw")
    p.add_argument("--max-people", type=positive_int,
                   help="score only the records of at most N people (before --limit picks), e.g. 2 to compare with "
                        "a cast of pairs; the identification gallery stays the whole benchmark")
    p.add_argument("--steps", type=positive_int, default=20, help="Euler steps (default: 20)")
    p.add_argument("--id-guidance", type=non_negative_float, default=1.0,
                   help="identity guidance scale g: v_none + g (v_id - v_none); 1 = off, >1 costs a second forward")
    guidance_interval_option(p, "every step")
    p.add_argument("--id-scale", type=non_negative_float, default=1.0,
                   help="identity strength: multiplies the gate's lambda (0 = branch off, 1 = as trained, > 1 "
                        "extrapolates at no extra forward; default: 1)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="record k's noise uses seed + k (default: 0)")
    p.add_argument("--schedule", action="append", metavar="KEY=VALUE",
                   help="override the gate while sampling, e.g. group.lambda_min=0.2 (repeatable; analytic gates only)")
    device_option(p, "where the model samples (the judges score on the CPU): ")
    command(train, "dpo", cmd_train_dpo, "stage 2: Flow-DPO of a LoRA policy on an SFT run (preference pairs)",
            "Train a LoRA adapter on a finished SFT model with Flow-DPO on the pairs of `idglow pairs build`. The "
            "reference is the same model with the adapter disabled. Loss variants: sigmoid, weighted (per-pair weight), "
            "margin (per-pair margin). Re-running the same command resumes from the newest checkpoint.",
            config="DPO config YAML, e.g. configs/synth-dpo.yaml (keys: idglow config --kind dpo)", full_name="train dpo")


def _register_export(train) -> None:
    """``idglow train export``: its options are many (a model folder's provenance, gallery, stage and DPO scale)."""
    p = command(train, "export", cmd_train_export, "export a finished base, SFT or DPO run as a self-contained model folder",
                "Write a finished run as one model folder with provenance.json (training command, commit, steps, wall "
                "time, scores). A base run: its transformer as an fp16 diffusers folder (what assets/base holds). An SFT "
                "or DPO run: the base backbone (fp16, unmerged), one LoRA holding every adapter, and the identity branch, a "
                "folder that --run of `idglow generate`, `sft-eval`, `serve` and IdGlowPipeline.from_pretrained accept with "
                "no training and no other run (what assets/idglow holds); it is also a base model for `idglow train sft --base`.",
                full_name="train export")
    p.add_argument("--run", required=True, help="a finished run folder of `idglow train base`, `sft` or `dpo`")
    p.add_argument("--out", default=None, help=f"output folder (default: {BASE} for a base run, {IDGLOW_MODEL} otherwise); "
                   "written beside it and renamed into place")
    p.add_argument("--train-command-line", default=None,
                   help="the command(s) that trained the run, recorded in provenance.json")
    p.add_argument("--scores", action="append", default=[], metavar="DIR",
                   help="an `idglow train sft-eval --out` folder whose benchmark results go into provenance.json (repeatable)")
    p.add_argument("--gallery", metavar="CAST", help="SFT/DPO runs: add gallery/, one reference crop of each of 12 held-out "
                   "identities of CAST's synth-group benchmark: the people `idglow serve` offers")
    p.add_argument("--stage", choices=("all", "sft"), default="all",
                   help="all (default): the run as trained. sft: --run is an exported SFT+DPO model (e.g. assets/idglow); "
                   "write its SFT stage alone (same identity branch, SFT's ranks of its LoRA: exact), e.g. to refine it "
                   "with `idglow train sft --init OUT` when the SFT run is gone; needs --out")
    p.add_argument("--dpo-scale", type=float, default=None, metavar="S",
                   help="--run is an exported SFT+DPO model: write it with its DPO adapter scaled by S (exact: the "
                   "weights W_base + dW_sft + S * dW_dpo; 0 is the SFT stage, 1 the model as trained, above 1 "
                   "extrapolates DPO past where training stopped), always relative to the adapter as trained (on a model "
                   "already scaled, e.g. assets/idglow at 1.5, S=1 gives the model as trained back). --scores here are "
                   "sft-eval outputs of the scaled model itself (they choose its sampler.json); needs --out")
