"""``idglow prompts``: per-subject prompt synthesis and the badcase-driven refine loop."""

from __future__ import annotations

import argparse
import json

from idglow.cli.registry import command, group, non_negative_float, non_negative_int, positive_float, positive_int
from idglow.utils.defaults import BENCHMARKS, JUDGES


def _synthesizer(args: argparse.Namespace):
    """None for ``rules``; the VLM client for ``openai``."""
    if args.backend == "rules":
        return None
    from idglow.prompts.vlm import VLMOptions, VLMPromptSynthesizer

    return VLMPromptSynthesizer(VLMOptions(base_url=args.base_url, model=args.model, api_key_env=args.api_key_env,
                                           timeout=args.timeout, max_retries=args.max_retries, concurrency=args.concurrency))


def cmd_prompts_refine(args: argparse.Namespace) -> int:
    """One badcase-driven refine round on a benchmark."""
    from idglow.prompts.refine_loop import refine
    from idglow.runs.load import check_run

    check_run(args.run)
    summary = refine(args.run, args.benchmark, args.out, _synthesizer(args), judges=args.judges, limit=args.limit,
                     steps=args.steps, seed=args.seed, id_guidance=args.id_guidance, reorder=args.reorder)
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}/summary.md, badcases.jsonl, refined_prompts.jsonl, round0/, round1/")
    return 0


def cmd_prompts_badcases(args: argparse.Namespace) -> int:
    """A trained model's badcase library on training scenes."""
    from idglow.prompts.refine_loop import training_badcases
    from idglow.runs.load import check_run

    check_run(args.run)
    summary = training_badcases(args.run, args.manifest, args.out, judges=args.judges, limit=args.limit, steps=args.steps,
                                seed=args.seed)
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}/badcases.jsonl and summary.json; next: idglow prompts caption --style refined --badcases {args.out}")
    return 0


def cmd_prompts_caption(args: argparse.Namespace) -> int:
    """Caption every record of a manifest (cached; re-running continues)."""
    from idglow.prompts.caption import caption_manifest

    if (args.style == "refined") != (args.badcases is not None):
        raise ValueError("--badcases DIR goes with --style refined (and only with it)")
    synthesizer = _synthesizer(args)
    result = caption_manifest(args.manifest, args.out, synthesizer, cache=args.cache, style=args.style, badcases=args.badcases)
    if synthesizer is not None:
        result["vlm_stats"] = synthesizer.stats
    print(json.dumps(result, indent=2))
    return 0


def _add_backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["rules", "openai"], default="rules",
                   help="rules (offline, deterministic; default) or openai (any OpenAI-compatible chat endpoint)")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="openai: endpoint base URL")
    p.add_argument("--model", default="Qwen2.5-VL-7B-Instruct", help="openai: model name")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: environment variable holding the key")
    p.add_argument("--timeout", type=positive_float, default=30.0, help="openai: seconds per request (default: 30)")
    p.add_argument("--max-retries", type=non_negative_int, default=2, help="openai: retries with backoff on 429/5xx/connection errors")
    p.add_argument("--concurrency", type=positive_int, default=4, help="openai: requests in flight (default: 4)")


def register(sub) -> None:
    """``idglow prompts refine | badcases | caption``."""
    prompts = group(sub, "prompts", "per-subject prompts and the badcase refine loop",
                    "Per-subject prompt synthesis (rules or a VLM) and the badcase-driven refine loop.")
    p = command(prompts, "refine", cmd_prompts_refine,
                "generate, find failures, record badcases, rewrite prompts, regenerate, re-measure",
                "One refine round: generate the benchmark with a trained run, detect failures with the cast judges "
                "(leakage, swap, missing/extra person, failed age transform), record them in OUT/badcases.jsonl, "
                "rewrite the failing prompts, regenerate with the same seeds and compare (OUT/summary.md).",
                full_name="prompts refine")
    p.add_argument("--run", required=True, help="a finished run folder of `idglow train sft` or `train dpo`")
    p.add_argument("--benchmark", default=BENCHMARKS[0], help=f"benchmark manifest (default: {BENCHMARKS[0]})")
    p.add_argument("--out", default="runs/refine", help="output folder (default: runs/refine)")
    p.add_argument("--judges", default=JUDGES, help=f"cast judges (default: {JUDGES})")
    p.add_argument("--limit", type=positive_int, help="only the first N records")
    p.add_argument("--steps", type=positive_int, default=20, help="Euler steps (default: 20)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="noise seed; record k uses seed + k (default: 0)")
    p.add_argument("--id-guidance", type=non_negative_float, default=1.0, help="identity guidance scale (default: 1 = off)")
    p.add_argument("--reorder", action="store_true",
                   help="rules: put the failing people's clauses first (default: keep them left to right)")
    _add_backend_options(p)

    p = command(prompts, "badcases", cmd_prompts_badcases, "a trained model's failures on training scenes, as a badcase library",
                "Generate LIMIT records of an SFT manifest of the cast (training scenes, their own captions and "
                "references) with a trained run, judge them against their scenes, and record the failures (leakage, "
                "swap, missing/extra person, failed age transform) in OUT/badcases.jsonl: what `prompts caption "
                "--style refined` rewrites the training captions against. No benchmark record is used.",
                full_name="prompts badcases")
    p.add_argument("--run", required=True, help="a finished run folder (or a model folder such as assets/idglow)")
    p.add_argument("--manifest", required=True, help="an SFT manifest of the cast (e.g. data/cast/sft-group-train.jsonl)")
    p.add_argument("--out", default="runs/badcases", help="output folder (default: runs/badcases)")
    p.add_argument("--judges", default=JUDGES, help=f"cast judges (default: {JUDGES})")
    p.add_argument("--limit", type=positive_int, default=100, help="training records, evenly spread (default: 100)")
    p.add_argument("--steps", type=positive_int, default=20, help="Euler steps (default: 20)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="noise seed; record k uses seed + k (default: 0)")

    p = command(prompts, "caption", cmd_prompts_caption, "per-subject prompts for every record of a manifest (cached, resumable)",
                "Write a per-subject prompt for every record of an SFT or benchmark manifest from its annotations "
                "(rules) or a VLM (openai, with the reference images). Each caption is cached as soon as it exists, so "
                "an interrupted run continues where it stopped.", full_name="prompts caption")
    p.add_argument("--manifest", required=True, help="SFT or benchmark manifest (JSONL)")
    p.add_argument("--out", help="captioned manifest, in the same folder (default: <manifest>.captioned.jsonl)")
    p.add_argument("--cache", help="JSONL cache of finished captions (default: <out>.cache)")
    p.add_argument("--style", choices=["per-subject", "coarse", "refined"], default="per-subject",
                   help="per-subject: one clause per person binding position to attributes (default); coarse: count and "
                        "place only, what photo datasets give (rules only; the baseline of benchmarks/claims.py's claim iv); "
                        "refined: per-subject, rewritten against a badcase library (--badcases)")
    p.add_argument("--badcases", help="refined: a badcase folder (badcases.jsonl + summary.json) of `idglow prompts badcases`")
    _add_backend_options(p)
