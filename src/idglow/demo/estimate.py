"""What a demo preset will cost, estimated from its sizes before it runs.

The unit costs were measured by running both presets on the reference machine (2 CPU cores with
AVX512-BF16, torch 2.13.0, bf16 sampling, nothing else running); they scale with the preset's
steps and items. The estimate is printed before the demo starts; the time taken is reported after.
A slower or busier machine takes longer, but a step budget makes the numbers the same.
"""

from __future__ import annotations

from idglow.demo.presets import DemoPreset

# Seconds per unit on the reference machine (see the module docstring).
CAST_SCENE = 0.0085         # render one scene (or benchmark record) of the cast
JUDGES_TRAINED = 150.0      # `synth train-judges` at the default preset's sizes (--train-judges)
MU_REAL = 1.0               # mu_real of both benchmarks with the judges
SFT_SCENE_STEP = 0.153      # one scene through one SFT step (forward, identity loss, backward, AdamW)
SFT_FIXED = 8.0             # loading the base and the references' embeddings, saving
DIAGNOSTIC_ITEM = 1.5       # one held-out scene through SFT's final binding diagnostic
IMAGE_STEP = 0.036          # one image through one Euler step (bf16 sampling), K/V cached
SCORE_IMAGE = 0.02          # the judges on one generated image
DPO_STEP = 2.8              # one DPO step of 8 pairs (policy and reference forwards, backward)
STAGE_FIXED = 2.5           # loading a run, writing files, per stage and model


def _cast_scenes(preset: DemoPreset) -> int:
    sizes = dict(zip(preset.cast[::2], preset.cast[1::2]))
    per_size = int(sizes.get("--build.bench_per_size", 10))
    return (int(sizes.get("--build.sft_group", 0)) + int(sizes.get("--build.sft_age", 0))
            + 2 * int(sizes.get("--build.heldout_sft", 0)) + 2 * 4 * per_size)


def estimate_seconds(preset: DemoPreset, train_judges: bool = False) -> dict[str, float]:
    """Estimated seconds of every demo stage (keys: the stage names of :data:`idglow.demo.runner.STAGES`)."""
    p = preset
    sample = lambda images, steps=p.sample_steps: images * steps * IMAGE_STEP + images * SCORE_IMAGE  # noqa: E731
    judges = JUDGES_TRAINED * (1.0 if p.name == "default" else 0.1) if train_judges else 0.0
    # eval: four models on both benchmarks; identity guidance doubles one model's forwards
    eval_images = 2 * p.eval_limit
    return {
        "cast": _cast_scenes(p) * CAST_SCENE,
        "judges": judges + MU_REAL,
        "sft": SFT_FIXED + p.diagnostic_items * DIAGNOSTIC_ITEM + p.sft_steps * p.sft_batch * SFT_SCENE_STEP,
        "pairs": STAGE_FIXED + sample(p.pairs_items * p.pairs_candidates),
        "dpo": STAGE_FIXED + p.dpo_steps * DPO_STEP,
        "refine": STAGE_FIXED + sample(2 * p.refine_limit),
        "eval": 8 * STAGE_FIXED + sample(5 * eval_images),
    }
