"""``idglow pairs build``: preference pairs for stage 2 (``idglow train dpo`` is in :mod:`idglow.cli.train`)."""

from __future__ import annotations

import argparse
import json

from idglow.cli.config import load
from idglow.cli.registry import chosen_device, command, device_option, group, non_negative_float, non_negative_int, positive_int
from idglow.utils.defaults import HELDOUT, JUDGES, SFT_TRAIN


def cmd_pairs_build(args: argparse.Namespace) -> int:
    """Sample K candidates per training scene from an SFT run, score them and write the preference manifest."""
    from idglow.pairs.build import CastScorer, PairsOptions, PhotoScorer, build_pairs

    scoring = load("pairs", args)
    options = PairsOptions(candidates=args.candidates, items=args.items, seed=args.seed, steps=args.steps,
                           id_guidance=args.id_guidance, batch=args.batch)
    scorer = PhotoScorer(args.backend, args.model_dir) if args.scorer == "photo" else CastScorer(args.judges)
    summary = build_pairs(args.run, args.manifest, args.out, options, scoring, heldout=args.heldout, judges=args.judges,
                          skip_heldout=args.skip_heldout, scorer=scorer,
                          device=chosen_device(args.device))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("options", "scoring")}, indent=2))
    print(f"wrote {args.out}/pairs.jsonl ({summary['pairs']} pairs), scored.jsonl, build.json, candidates/, refs/")
    return 0


def register(sub) -> None:
    """``idglow pairs build``."""
    pairs = group(sub, "pairs", "preference pairs for DPO", "Preference pairs for DPO.")
    p = command(
        pairs, "build", cmd_pairs_build, "sample candidates from an SFT run, score them per subject and keep best-vs-worst pairs",
        "For each training scene: sample K candidates (different seeds) with an SFT run, score each "
        "subject (artifact, harmony, identity calibration), aggregate per image with the worst subject weighted "
        "most, and keep best vs worst when the gap passes min_gap. Scenes with held-out identities are refused. "
        "Scoring keys: --config FILE.yaml and --key value overrides (idglow config --kind pairs). Resumable.",
        config="scoring config YAML (keys: idglow config --kind pairs)", full_name="pairs build")
    p.add_argument("--run", required=True, help="a finished run folder of `idglow train sft`")
    p.add_argument("--manifest", nargs="+", default=SFT_TRAIN,
                   help="SFT manifests of training scenes (default: the cast's sft-group-train and sft-age-train)")
    p.add_argument("--heldout", nargs="*", default=HELDOUT,
                   help="manifests whose identities must not appear in pairs (default: the cast's held-out sets and benchmarks)")
    p.add_argument("--skip-heldout", action="store_true", help="skip (and count) scenes with held-out identities instead of stopping")
    p.add_argument("--out", default="data/pairs", help="output folder (default: data/pairs)")
    p.add_argument("--items", type=positive_int, help="scenes to use, evenly spread over the manifests (default: all)")
    p.add_argument("--candidates", type=positive_int, default=4, help="candidates per scene, K (default: 4)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="candidate j of scene k uses seed + k K + j (default: 0)")
    p.add_argument("--steps", type=positive_int, default=20, help="Euler steps (default: 20)")
    p.add_argument("--id-guidance", type=non_negative_float, default=1.0, help="identity guidance of the sampler (default: 1)")
    p.add_argument("--batch", type=positive_int, default=8, help="scenes per forward pass, each with K candidates (default: 8)")
    p.add_argument("--judges", default=JUDGES, help=f"cast judges that score (default: {JUDGES})")
    p.add_argument("--scorer", choices=["cast", "photo"], default="cast",
                   help="cast: the cast's judges (artifact, harmony, identity); photo: a real face backend's detection "
                   "confidence, a no-reference face quality (scikit-image: sharpness, noise) and identity calibrated to "
                   "the photos' own true scenes (default: cast)")
    p.add_argument("--backend", choices=["dlib", "insightface"], default="dlib", help="face backend of --scorer photo (default: dlib)")
    p.add_argument("--model-dir", help="a local insightface model pack, for --scorer photo --backend insightface")
    device_option(p, "where candidates are sampled: ")
