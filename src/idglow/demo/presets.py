"""Sizes and budgets of the ``idglow demo`` presets.

``default`` (what ``make demo`` runs) is sized for about 30 minutes on 2 CPU cores; ``quick`` for
a few minutes (the end-to-end test runs it) and is a smoke run: its models are barely trained.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DemoPreset:
    """One demo preset; every stage reads its sizes from here."""

    name: str
    cast: tuple[str, ...]            # `idglow synth build` overrides (dataset sizes)
    train_judges: bool               # False: use the shipped assets/judges (trained by the same code)
    judges: tuple[str, ...]          # `idglow synth train-judges` overrides when trained
    vae_steps: int                   # step cap of the small latent autoencoder (reported; the base model is pixels)
    vae_minutes: float               # and its wall-clock budget
    sft_minutes: float               # wall-clock budget of SFT (LoRA recipe) from the shipped base model
    sft_steps: int                   # and its step cap
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
        train_judges=True,
        judges=("--judges.train_scenes", "4000", "--judges.eval_scenes", "500", "--judges.detector_steps", "500",
                "--judges.embedder_epochs", "4", "--judges.age_epochs", "8", "--judges.colour_epochs", "2"),
        vae_steps=300, vae_minutes=1.5, sft_minutes=10.0, sft_steps=100000, pairs_items=120, pairs_candidates=4, dpo_steps=80,
        refine_limit=20, eval_limit=40, sample_steps=20, examples=4,
    ),
    "quick": DemoPreset(
        name="quick",
        cast=("--build.sft_group", "48", "--build.sft_age", "48", "--build.heldout_sft", "8",
              "--build.bench_per_size", "2", "--build.mini_adults", "0", "--world.heldout_identities", "60"),
        train_judges=False, judges=(),
        vae_steps=0, vae_minutes=0.0, sft_minutes=5.0, sft_steps=30, pairs_items=8, pairs_candidates=2, dpo_steps=4,
        refine_limit=4, eval_limit=8, sample_steps=6, examples=2,
    ),
}
