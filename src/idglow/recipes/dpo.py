"""Configuration of stage 2, group-level Flow-DPO (``idglow train dpo``)."""

from __future__ import annotations

import dataclasses

from idglow.conditioning.config import RepresentationConfig
from idglow.flow.dpo import DPO_LOSSES
from idglow.models import ModelConfig
from idglow.models.config import LoraOptions
from idglow.recipes.train import DataConfig, LogConfig, OptimConfig, TrainConfig
from idglow.utils.config import option, validate_sections


def _dpo_data() -> DataConfig:
    return DataConfig(manifests=["data/pairs/pairs.jsonl"])


def _dpo_optim() -> OptimConfig:
    return OptimConfig(steps=200, max_minutes=0.0, batch_size=8, lr=3e-4, warmup_steps=10, schedule="constant")


def _dpo_log() -> LogConfig:
    return LogConfig(log_every=10, checkpoint_every=50, sample_every=0, num_samples=4, sample_steps=20)


def _dpo_lora() -> LoraOptions:
    return LoraOptions(rank=8)


@dataclasses.dataclass
class DPOLossConfig:
    """The Flow-DPO objective: ``z = -beta (d(w) - d(l))``, ``d = mse_policy - mse_reference`` (docs/design.md §4)."""

    loss: str = option("sigmoid", f"variant: {', '.join(sorted(DPO_LOSSES))} (weighted/margin read each pair's weight/margin)")
    beta: float = option(1000.0, "inverse temperature of the implicit reward (errors are means over tokens and channels)")

    def validate(self) -> None:
        if self.loss not in DPO_LOSSES:
            raise ValueError(f"loss: unknown variant {self.loss!r}; choose one of {sorted(DPO_LOSSES)}")
        if self.beta <= 0:
            raise ValueError(f"beta: must be > 0, got {self.beta}")


@dataclasses.dataclass
class DPOConfig(TrainConfig):
    """Stage 2: a LoRA policy on a finished SFT run, trained on preference pairs with Flow-DPO.

    The SFT model (its identity branch, and its LoRA merged into the backbone) is frozen; the
    reference is the same weights with the DPO adapter disabled, so no second copy is held.
    Representation, prompt length, model and flow shift come from the SFT run.
    """

    out: str = option("runs/dpo", "run folder: checkpoints, logs, samples, final DPO LoRA")
    sft: str = option("runs/sft-lora", "finished `idglow train sft` run the policy starts from")
    model: ModelConfig = option(help="copied from the SFT run at start (values here are ignored)", factory=ModelConfig)
    representation: RepresentationConfig = option(help="copied from the SFT run at start (values here are ignored)",
                                                  factory=RepresentationConfig)
    lora: LoraOptions = option(help="the DPO adapter on the backbone (its LoRA-B starts at zero: policy = SFT at step 0)",
                               factory=_dpo_lora)
    dpo: DPOLossConfig = option(help="the preference objective", factory=DPOLossConfig)
    data: DataConfig = option(help="preference manifests written by `idglow pairs build`", factory=_dpo_data)
    optim: OptimConfig = option(help="optimisation (batch_size counts pairs)", factory=_dpo_optim)
    log: LogConfig = option(help="logging, checkpoints and samples", factory=_dpo_log)

    def validate(self) -> None:
        super().validate()
        validate_sections(self, "lora", "dpo")
        if self.lora.rank <= 0:
            raise ValueError("lora.rank: the DPO policy is a LoRA adapter; rank must be > 0")
        if self.data.stream:
            raise ValueError("data.stream: DPO reads preference pairs into memory (a pair set is items x candidates of "
                             "`idglow pairs build`, small); streaming is for SFT and base sets")
