"""``idglow cache build``, ``idglow data shard`` and ``idglow flux tiny-folder``: data preparation for real scale."""

from __future__ import annotations

import argparse
import json

from idglow.cli.registry import command, group, non_negative_int, positive_int


def cmd_cache_build(args: argparse.Namespace) -> int:
    """Compute every latent and prompt embedding of a training config into its ``data.cache_dir``."""
    from idglow.recipes.sft import SFTConfig
    from idglow.recipes.train import TrainConfig
    from idglow.training.caches import build_caches
    from idglow.utils.config import load_config

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
    from idglow.conditioning.flux_tiny import save_tiny_flux_folder

    print(f"wrote {save_tiny_flux_folder(args.out, args.seed)} (random weights; FLUX.1-dev's layout and classes)")
    return 0


def register(sub) -> None:
    """``idglow cache build``, ``idglow data shard`` and ``idglow flux tiny-folder``."""
    cache = group(sub, "cache", "disk caches of latents and prompt embeddings", "Disk caches.")
    p = command(cache, "build", cmd_cache_build, "encode every image and prompt of a training config into its data.cache_dir",
                "Encode every training image (VAE latents) and prompt (text encoders) of a training config once, into "
                "data.cache_dir. Training runs with the same cache_dir then load them instead of encoding, so the VAE "
                "and text encoders need no GPU memory during training. Re-running encodes only what is missing. Keys: "
                "--config FILE.yaml and --key value overrides (idglow config --kind sft).",
                config="training config YAML, e.g. configs/flux-dev-sft.yaml", full_name="cache build")
    p.add_argument("--kind", choices=["sft", "base"], default="sft", help="config kind (default: sft)")

    data = group(sub, "data", "dataset formats", "Dataset formats.")
    p = command(
        data, "shard", cmd_data_shard, "pack an SFT manifest and its images into webdataset shards",
        "Write webdataset .tar shards (one sample per scene: the record as .json, the image and each "
        "reference as they are on disk). Any data.manifests entry may name the shards instead of the JSONL; "
        "training reads the same records and gives the same batches.", full_name="data shard")
    p.add_argument("--manifest", required=True, help="an SFT manifest (.jsonl)")
    p.add_argument("--out", required=True, help="output folder of the shards")
    p.add_argument("--per-shard", type=positive_int, default=1000, help="scenes per shard (default: 1000)")

    flux = group(sub, "flux", "FLUX.1 folders", "FLUX.1 folders in diffusers format.")
    p = command(
        flux, "tiny-folder", cmd_flux_tiny_folder, "write a tiny random FLUX.1-layout folder, to dry-run the FLUX.1-dev "
        "path on a CPU", "Write a diffusers FLUX folder with FLUX.1-dev's layout and classes (transformer, VAE, CLIP, T5, "
        "tokenizers, scheduler) at toy size with random weights. Pass it as --base to `idglow train sft` "
        "to run exactly the code path of FLUX.1-dev in seconds.", full_name="flux tiny-folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=non_negative_int, default=0, help="weight seed (default: 0)")
