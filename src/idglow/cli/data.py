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


def cmd_data_build(args: argparse.Namespace) -> int:
    """Turn a folder of people's photos and group photos into SFT and benchmark manifests."""
    from idglow.cli.config import load
    from idglow.faces import load_backend
    from idglow.photos.build import build_photo_dataset

    options = load("photos", args)
    summary = build_photo_dataset(args.photos, args.out, load_backend(args.backend, model_dir=args.model_dir), options)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("options", "skipped_files")}, indent=2))
    written = [f"{args.out}/{name}" for name, n in (("sft.jsonl", summary["scenes"]), ("bench.jsonl", summary["benchmark"])) if n]
    print(f"wrote {', '.join(written)} and build.json (skipped files listed there)")
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
    p = command(
        data, "build", cmd_data_build, "turn a folder of real photos into SFT and benchmark manifests",
        "From DIR/people/<name>/* (photos of one person each) and DIR/groups/* (group photos): detect and embed every "
        "face, assign each group-photo face to a person (one to one, by identity similarity; a face that is nobody's or "
        "close to two people skips the photo, counted), take each subject's reference from another photo of that "
        "person, centre-crop and resize the scenes, caption them with the rules synthesizer, and write OUT/sft.jsonl, "
        "OUT/bench.jsonl (held-out group photos), images/, refs/ and build.json (counts, skipped files, the photos' "
        "mu_real). Caption with a VLM afterwards: `idglow prompts caption --manifest OUT/sft.jsonl --synthesizer openai "
        "...`. Train: `idglow train sft --base <FLUX folder> --data.manifests '[OUT/sft.jsonl]' --references.backend "
        "dlib ...`; pairs: `idglow pairs build --scorer photo ...`. Keys: --config FILE.yaml and --key value "
        "(idglow config --kind photos), e.g. --height 1024 --width 1024.",
        config="photo build options YAML (keys: idglow config --kind photos)", full_name="data build")
    p.add_argument("--photos", required=True, metavar="DIR", help="folder with people/<name>/ and groups/")
    p.add_argument("--out", required=True, help="output folder (manifests, images, references)")
    p.add_argument("--backend", choices=["dlib", "insightface"], default="dlib",
                   help="face backend that detects and embeds (default: dlib, offline; insightface needs --model-dir)")
    p.add_argument("--model-dir", help="a local insightface model pack (e.g. ~/.insightface/models/buffalo_l)")

    flux = group(sub, "flux", "FLUX.1 folders", "FLUX.1 folders in diffusers format.")
    p = command(
        flux, "tiny-folder", cmd_flux_tiny_folder, "write a tiny random FLUX.1-layout folder, to dry-run the FLUX.1-dev "
        "path on a CPU", "Write a diffusers FLUX folder with FLUX.1-dev's layout and classes (transformer, VAE, CLIP, T5, "
        "tokenizers, scheduler) at toy size with random weights. Pass it as --base to `idglow train sft` "
        "to run exactly the code path of FLUX.1-dev in seconds.", full_name="flux tiny-folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=non_negative_int, default=0, help="weight seed (default: 0)")
