"""``idglow pairs build`` and ``idglow train dpo``: the preference stage."""

from __future__ import annotations

import argparse
import json

from idglow.pairs.build import CAST_HELDOUT


def cmd_pairs_build(args: argparse.Namespace) -> int:
    """Sample K candidates per training scene from an SFT run, score them and write the preference manifest."""
    from idglow.config import load_config
    from idglow.pairs.build import PairsOptions, build_pairs
    from idglow.pairs.scoring import PairScoring

    scoring = load_config(PairScoring, args.config, args.overrides)
    options = PairsOptions(candidates=args.candidates, items=args.items, seed=args.seed, steps=args.steps,
                           id_guidance=args.id_guidance, batch=args.batch)
    summary = build_pairs(args.run, args.manifest, args.out, options, scoring, heldout=args.heldout, judges=args.judges,
                          skip_heldout=args.skip_heldout)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("options", "scoring")}, indent=2))
    print(f"wrote {args.out}/pairs.jsonl ({summary['pairs']} pairs), scored.jsonl, build.json, candidates/, refs/")
    return 0


def cmd_train_dpo(args: argparse.Namespace) -> int:
    """Stage 2: Flow-DPO of a LoRA policy on an SFT run; resumes from the run folder's checkpoints."""
    from idglow.config import load_config
    from idglow.train.dpo import DPOTrainer
    from idglow.train.dpo_config import DPOConfig

    record = DPOTrainer(load_config(DPOConfig, args.config, args.overrides)).run()
    print(f"done: step {record.get('step')}, loss {record.get('loss', float('nan')):.4f}, "
          f"implicit accuracy {record.get('implicit_acc', float('nan')):.3f}, "
          f"reward margin {record.get('reward_margin', float('nan')):.3f}")
    return 0


def add_dpo_train_command(train_sub) -> None:
    """Register ``train dpo`` on the ``train`` subparsers."""
    p = train_sub.add_parser("dpo", help="stage 2: Flow-DPO of a LoRA policy on an SFT run (preference pairs)",
                             description="Train a LoRA adapter on a finished SFT model with Flow-DPO on the pairs of "
                             "`idglow pairs build`. The reference is the same model with the adapter disabled. "
                             "Loss variants: sigmoid, weighted (per-pair weight), margin (per-pair margin). "
                             "Re-running the same command resumes from the newest checkpoint.")
    p.add_argument("--config", metavar="FILE", help="DPO config YAML, e.g. configs/synth-dpo.yaml (keys: idglow config --kind dpo)")
    p.set_defaults(func=cmd_train_dpo, command="train dpo")


def add_pairs_commands(sub, epilog: str) -> None:
    """Register ``pairs build`` on the top-level subparsers."""
    pairs = sub.add_parser("pairs", help="preference pairs for DPO", description="Preference pairs for DPO.")
    pairs_sub = pairs.add_subparsers(dest="pairs_command", metavar="PAIRS_COMMAND", required=True)
    p = pairs_sub.add_parser(
        "build", help="sample candidates from an SFT run, score them per subject and keep best-vs-worst pairs",
        description="For each training scene: sample K candidates (different seeds) with an SFT run, score each "
        "subject (artifact, harmony, identity calibration), aggregate per image with the worst subject weighted "
        "most, and keep best vs worst when the gap passes min_gap. Scenes with held-out identities are refused. "
        "Scoring keys: --config FILE.yaml and --key value overrides (idglow config --kind pairs). Resumable.",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a finished run folder of `idglow train sft`")
    p.add_argument("--manifest", nargs="+", default=["data/cast/sft-group-train.jsonl", "data/cast/sft-age-train.jsonl"],
                   help="SFT manifests of training scenes (default: the cast's sft-group-train and sft-age-train)")
    p.add_argument("--heldout", nargs="*", default=CAST_HELDOUT,
                   help="manifests whose identities must not appear in pairs (default: the cast's held-out sets and benchmarks)")
    p.add_argument("--skip-heldout", action="store_true", help="skip (and count) scenes with held-out identities instead of stopping")
    p.add_argument("--out", default="data/pairs", help="output folder (default: data/pairs)")
    p.add_argument("--items", type=int, help="scenes to use, evenly spread over the manifests (default: all)")
    p.add_argument("--candidates", type=int, default=4, help="candidates per scene, K (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="candidate j of scene k uses seed + k K + j (default: 0)")
    p.add_argument("--steps", type=int, default=20, help="Euler steps (default: 20)")
    p.add_argument("--id-guidance", type=float, default=1.0, help="identity guidance of the sampler (default: 1)")
    p.add_argument("--batch", type=int, default=8, help="scenes per forward pass, each with K candidates (default: 8)")
    p.add_argument("--judges", default="assets/judges", help="cast judges that score (default: assets/judges)")
    p.add_argument("--config", metavar="FILE", help="scoring config YAML (keys: idglow config --kind pairs)")
    p.set_defaults(func=cmd_pairs_build, command="pairs build")
