"""Configuration of the synthetic cast: the world, the datasets built from it, and judge training."""

from __future__ import annotations

import dataclasses

import numpy as np

from idglow.cast.judge_training import JudgeTrainingConfig
from idglow.cast.scenes import MAX_PEOPLE
from idglow.utils.config import option, require_min, validate_sections

# Held-out identity ids start here, so train and held-out splits never overlap whatever their sizes.
HELDOUT_OFFSET = 1_000_000


@dataclasses.dataclass
class WorldConfig:
    """The procedural world: its seed, image size and identity splits."""

    seed: int = option(0, "world seed: identity k is the same person in every dataset of this seed")
    width: int = option(128, "image width in pixels (4 people of about 26 px face height fit side by side)")
    height: int = option(64, "image height in pixels; faces scale with it (face height 0.40 x height for adults)")
    max_people: int = option(
        MAX_PEOPLE,
        "largest group: scenes and benchmarks have 1 to this many people (e.g. 2 with height 128 and width 128: "
        "faces twice as large at twice the pixels of the default)",
    )
    train_identities: int = option(3000, "identities 0..N-1 are for training")
    heldout_identities: int = option(500, "identities from 1,000,000 on are held out (benchmarks, validation)")

    def validate(self) -> None:
        if self.width < 32 or self.height < 32:
            raise ValueError(f"width: {self.width}x{self.height} is too small to hold a face; need at least 32x32")
        if not 1 <= self.max_people <= MAX_PEOPLE:
            raise ValueError(f"max_people: must be 1 to {MAX_PEOPLE} (captions name at most {MAX_PEOPLE} positions), "
                             f"got {self.max_people}")
        require_min(self, self.max_people, "train_identities", "heldout_identities")  # a group's people are distinct
        if self.train_identities > HELDOUT_OFFSET:
            raise ValueError(f"train_identities: at most {HELDOUT_OFFSET}")

    def ids(self, split: str) -> np.ndarray:
        """Identity ids of ``split`` (``train`` or ``heldout``)."""
        if split == "train":
            return np.arange(self.train_identities)
        if split == "heldout":
            return np.arange(HELDOUT_OFFSET, HELDOUT_OFFSET + self.heldout_identities)
        raise ValueError(f"split: unknown split {split!r}; choose train or heldout")


@dataclasses.dataclass
class BuildConfig:
    """Sizes of the datasets written by ``idglow synth build``."""

    sft_group: int = option(4000, "training samples of task group (adult references, adult group)")
    sft_age: int = option(4000, "training samples of task age (adult references, the same people as children)")
    heldout_sft: int = option(200, "validation samples per task from held-out identities")
    bench_per_size: int = option(
        50, "benchmark prompts per group size (1 to world.max_people), for each of synth-group and synth-age")
    mini_adults: int = option(200, "counterfactual mini-adult scenes (adult faces on child bodies)")
    ref_size: int = option(32, "side of the reference face crops in pixels")
    workers: int = option(2, "rendering processes")
    seed: int = option(0, "random seed of scene sampling")

    def validate(self) -> None:
        require_min(self, 0, "sft_group", "sft_age", "heldout_sft", "bench_per_size", "mini_adults")
        require_min(self, 16, "ref_size")
        require_min(self, 1, "workers")


@dataclasses.dataclass
class SynthConfig:
    """``idglow synth``: world, dataset sizes, judge training."""

    world: WorldConfig = option(help="the procedural world", factory=WorldConfig)
    build: BuildConfig = option(help="dataset sizes of `synth build`", factory=BuildConfig)
    judges: JudgeTrainingConfig = option(help="judge training of `synth train-judges`", factory=JudgeTrainingConfig)

    def validate(self) -> None:
        validate_sections(self, "world", "build", "judges")
