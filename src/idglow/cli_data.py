"""``idglow cache build``, ``idglow data shard`` and ``idglow flux tiny-folder``: data preparation for real scale."""

from __future__ import annotations

import argparse
import json


def cmd_cache_build(args: argparse.Namespace) -> int:
    """Compute every latent and prompt embedding of a training config into its ``data.cache_dir``."""
    from idglow.config import load_config
    from idglow.precompute import build_caches
    from idglow.train.config import TrainConfig
    from idglow.train.sft_config import SFTConfig

    cfg = load_config(SFTConfig if args.kind == "sft" else TrainConfig, args.config, args.overrides)
    cfg.validate()
    print(json.dumps(build_caches(cfg), indent=2))
    return 0


def cmd_data_shard(args: argparse.Namespace) -> int:
    """Pack an SFT manifest and its images into webdataset shards."""
    from idglow.data.shards import write_shards

    shards = write_shards(args.manifest, args.out, args.per_shard)
    pattern = f"{shards[0].parent}/{shards[0].name.rsplit('-', 1)[0]}-{{{0:06d}..{len(shards) - 1:06d}}}.tar"
    print(f"wrote {len(shards)} shard(s) to {args.out}; train on them with --data.manifests '[\"{pattern}\"]'")
    return 0


def cmd_flux_tiny_folder(args: argparse.Namespace) -> int:
    """Write a tiny random FLUX.1-layout folder (a dry run of the FLUX.1-dev code path on a CPU)."""
    from idglow.flux_tiny import save_tiny_flux_folder

    print(f"wrote {save_tiny_flux_folder(args.out, args.seed)} (random weights; FLUX.1-dev's layout and classes)")
    return 0


def add_data_commands(sub, epilog: str) -> None:
    """Register ``cache build``, ``data shard`` and ``flux tiny-folder``."""
    cache = sub.add_parser("cache", help="disk caches of latents and prompt embeddings", description="Disk caches.")
    cache_sub = cache.add_subparsers(dest="cache_command", metavar="CACHE_COMMAND", required=True)
    p = cache_sub.add_parser(
        "build", help="encode every image and prompt of a training config into its data.cache_dir",
        description="Encode every training image (VAE latents) and prompt (text encoders) of a training config "
        "once, into data.cache_dir. Training runs with the same cache_dir then load them instead of encoding, "
        "so the VAE and text encoders need no GPU memory during training. Re-running encodes only what is "
        "missing. Keys: --config FILE.yaml and --key value overrides (idglow config --kind sft).",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="training config YAML, e.g. configs/flux-dev-sft.yaml")
    p.add_argument("--kind", choices=["sft", "base"], default="sft", help="config kind (default: sft)")
    p.set_defaults(func=cmd_cache_build, command="cache build")

    data = sub.add_parser("data", help="dataset formats", description="Dataset formats.")
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    p = data_sub.add_parser(
        "shard", help="pack an SFT manifest and its images into webdataset shards",
        description="Write webdataset .tar shards (one sample per scene: the record as .json, the image and each "
        "reference as they are on disk). Any data.manifests entry may name the shards instead of the JSONL; "
        "training reads the same records and gives the same batches.")
    p.add_argument("--manifest", required=True, help="an SFT manifest (.jsonl)")
    p.add_argument("--out", required=True, help="output folder of the shards")
    p.add_argument("--per-shard", type=int, default=1000, help="scenes per shard (default: 1000)")
    p.set_defaults(func=cmd_data_shard, command="data shard")

    flux = sub.add_parser("flux", help="FLUX.1 folders", description="FLUX.1 folders in diffusers format.")
    flux_sub = flux.add_subparsers(dest="flux_command", metavar="FLUX_COMMAND", required=True)
    p = flux_sub.add_parser(
        "tiny-folder", help="write a tiny random FLUX.1-layout folder, to dry-run the FLUX.1-dev path on a CPU",
        description="Write a diffusers FLUX folder with FLUX.1-dev's layout and classes (transformer, VAE, CLIP, T5, "
        "tokenizers, scheduler) at toy size with random weights. Pass it as --base to `idglow train sft` "
        "to run exactly the code path of FLUX.1-dev in seconds.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="weight seed (default: 0)")
    p.set_defaults(func=cmd_flux_tiny_folder, command="flux tiny-folder")
