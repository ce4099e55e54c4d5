"""Sizes and budgets of the ``idglow demo`` presets, every budget in steps or items (never minutes).

A budget in steps makes the demo's numbers a function of the command alone: the same command gives the
same metrics on a busy or a quiet machine, only the time differs (it is estimated before the run and
reported after). ``default`` (what ``make demo`` runs) is sized for about 12 minutes on 2 CPU cores;
``quick`` for under 2 minutes (the end-to-end test runs it) and is a smoke run: its models are barely trained.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DemoPreset:
    """One demo preset; every stage reads its sizes from here."""

    name: str
    cast: tuple[str, ...]            # `idglow synth build` overrides (dataset sizes)
    judges: tuple[str, ...]          # `idglow synth train-judges` overrides, used with --train-judges
    sft_steps: int                   # SFT (LoRA recipe) steps from the shipped base model
    sft_batch: int                   # scenes per SFT step
    diagnostic_items: int            # held-out scenes of SFT's binding diagnostic (run once, at the end)
    pairs_items: int                 # training scenes sampled for DPO pairs
    pairs_candidates: int            # candidates per scene
    dpo_steps: int                   # DPO steps (8 pairs each)
    refine_limit: int                # synth-group records in the prompt-refine round
    eval_limit: int                  # records per benchmark scored for every model
    sample_steps: int                # Euler steps of every generation
    examples: int                    # records per task shown in the report


PRESETS = {
    "default": DemoPreset(
        name="default",
        cast=("--build.sft_group", "1200", "--build.sft_age", "1200", "--build.heldout_sft", "40",
              "--build.bench_per_size", "10", "--build.mini_adults", "0"),
        judges=("--judges.train_scenes", "4000", "--judges.eval_scenes", "500", "--judges.detector_steps", "500",
                "--judges.embedder_epochs", "4", "--judges.age_epochs", "8", "--judges.colour_epochs", "2"),
        sft_steps=260, sft_batch=8, diagnostic_items=8, pairs_items=40, pairs_candidates=4, dpo_steps=32,
        refine_limit=16, eval_limit=20, sample_steps=12, examples=4,
    ),
    "quick": DemoPreset(
        name="quick",
        cast=("--build.sft_group", "48", "--build.sft_age", "48", "--build.heldout_sft", "8",
              "--build.bench_per_size", "2", "--build.mini_adults", "0", "--world.heldout_identities", "60"),
        judges=("--judges.train_scenes", "400", "--judges.eval_scenes", "100", "--judges.detector_steps", "60",
                "--judges.embedder_epochs", "1", "--judges.age_epochs", "1", "--judges.colour_epochs", "1"),
        sft_steps=12, sft_batch=4, diagnostic_items=2, pairs_items=6, pairs_candidates=2, dpo_steps=3,
        refine_limit=3, eval_limit=4, sample_steps=4, examples=2,
    ),
}
