"""Configuration of stage 1, supervised fine-tuning of the identity branch (``idglow train sft``)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from idglow.faces.identity_loss import ANNEALING
from idglow.identity.config import IdentityConfig, _age_schedule, _group_schedule
from idglow.identity.schedules import ScheduleConfig
from idglow.models import ModelConfig
from idglow.recipes.train import LogConfig, OptimConfig, TrainConfig
from idglow.utils.config import option, validate_sections
from idglow.utils.defaults import BASE, JUDGES, SFT_HELDOUT


def _sft_model() -> ModelConfig:
    return ModelConfig(preset="small", text_dim=384, identity=IdentityConfig(encoder="embedding"))


def _sft_optim() -> OptimConfig:
    return OptimConfig(steps=100000, max_minutes=15.0, batch_size=16, lr=1e-3, warmup_steps=50, schedule="constant")


def _sft_log() -> LogConfig:
    return LogConfig(log_every=20, checkpoint_every=100, sample_every=0, num_samples=6, sample_steps=20)


@dataclasses.dataclass
class IdentityLossConfig:
    """The identity loss on x0_hat: ``w_id * s_task(sigma) * a(step) * (1 - cos)``, per subject, averaged per image."""

    weight: float = option(0.1, "w_id (0 = no identity loss; its similarity is still logged)")
    follow_gate: bool = option(True, "s_task(sigma) = the gate's analytic schedule of each task; false: `group`/`age` below")
    group: ScheduleConfig = option(help="s_task of task group when follow_gate is false", factory=_group_schedule)
    age: ScheduleConfig = option(help="s_task of task age when follow_gate is false", factory=_age_schedule)
    anneal: Literal["none", "warmup", "decay"] = option("none", f"a(step): {ANNEALING} (linear over anneal_steps)")
    anneal_steps: int = option(0, "steps of the warm-up or decay of a(step)")
    judges: str = option(JUDGES, "folder of the cast judges; its frozen `encoder` embeds faces and references")
    extra_embedders: list[str] = option(
        help="recognizer cast only: more frozen embedders in `judges` (`idglow synth train-embedder`) whose cosines "
             "the loss averages with the encoder's, so a face must satisfy all of them; the references the branch "
             "reads stay the encoder's. The evaluation `judge` is refused: training on it would game FaceSim",
        factory=list)
    encoder_weight: float = option(
        1.0, "with extra_embedders: the encoder's weight in the loss's average of cosines (each extra embedder weighs "
             "1); 0 leaves the loss to the extra embedders, while the branch still reads the encoder's references")
    recognizer: Literal["cast", "arcface"] = option(
        "cast", "frozen differentiable face embedder of the loss and of the references: `cast` (the judges' `encoder`, "
        "synthetic faces only) or `arcface` (an insightface IResNet from `arcface`, for real photos)")
    arcface: str | None = option(None, "arcface only: the IResNet weights as a .safetensors file (never downloaded)")
    views: int = option(1, "crops of each face of x0_hat whose similarities are averaged; with view_shift or "
                        "view_scale > 0 each is randomly jittered, so texture tuned to one exact crop stops paying")
    view_shift: float = option(0.0, "jitter of each view's centre, up to this fraction of the face box's longer side")
    view_scale: float = option(0.0, "jitter of each view's size: a factor in [1 - view_scale, 1 + view_scale]")
    blur: float = option(0.0, "Gaussian sigma (crop pixels) applied to the faces of x0_hat and to the references "
                         "before the recognizer, so speckle finer than it cannot move the loss (0 = none)")

    def validate(self) -> None:
        if self.weight < 0:
            raise ValueError(f"weight: must be >= 0, got {self.weight}")
        if self.views < 1:
            raise ValueError(f"views: must be >= 1, got {self.views}")
        for name in ("view_shift", "view_scale"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ValueError(f"{name}: must be in [0, 0.5), got {getattr(self, name)}")
        if not 0.0 <= self.blur <= 4.0:
            raise ValueError(f"blur: must be in [0, 4] crop pixels, got {self.blur}")
        if self.anneal_steps < 0:
            raise ValueError(f"anneal_steps: must be >= 0, got {self.anneal_steps}")
        if self.recognizer == "arcface" and not self.arcface:
            raise ValueError("arcface: recognizer `arcface` needs the IResNet weights (a .safetensors file)")
        if self.extra_embedders and self.recognizer != "cast":
            raise ValueError("extra_embedders: only the cast recognizer takes extra embedders")
        if "judge" in self.extra_embedders or "encoder" in self.extra_embedders:
            raise ValueError("extra_embedders: 'judge' scores FaceSim (training on it would game the metric) and "
                             "'encoder' is always in the loss; name embedders from `idglow synth train-embedder`")
        if self.encoder_weight < 0 or (self.encoder_weight == 0 and not self.extra_embedders):
            raise ValueError(f"encoder_weight: must be >= 0, and 0 only with extra_embedders (else nothing scores the "
                             f"faces), got {self.encoder_weight} with extra_embedders {self.extra_embedders}")
        if self.encoder_weight != 1.0 and not self.extra_embedders:
            raise ValueError("encoder_weight: weighs the encoder against extra_embedders, and none are given")
        if len(set(self.extra_embedders)) != len(self.extra_embedders):
            raise ValueError(f"extra_embedders: names repeat: {self.extra_embedders}")
        validate_sections(self, "group", "age")


@dataclasses.dataclass
class ReferenceConfig:
    """What embeds each subject's reference for the identity branch (``identity.encoder: embedding``)."""

    backend: Literal["recognizer", "dlib", "insightface"] = option(
        "recognizer", "recognizer: identity_loss's recognizer (cast encoder or ArcFace); dlib: dlib's 128-d "
        "descriptors, offline (`pip install idglow[real]`); insightface: ArcFace 512-d from `model_dir`. dlib and "
        "insightface find the largest face in each reference image (an error names a reference without one)")
    model_dir: str | None = option(None, "insightface only: a local model pack folder (e.g. buffalo_l); never downloaded")

    def validate(self) -> None:
        if self.backend == "insightface" and not self.model_dir:
            raise ValueError("model_dir: the insightface backend needs a local model pack folder")


@dataclasses.dataclass
class DiagnosticsConfig:
    """Held-out binding diagnostic: flow-matching loss with true, shuffled and no references, by sigma."""

    every: int = option(100, "steps between diagnostics (0 = only at the end)")
    manifests: list[str] = option(
        help="held-out SFT manifests the diagnostic items come from",
        factory=lambda: list(SFT_HELDOUT),
    )
    items: int = option(32, "held-out scenes (split evenly over the manifests); each is scored at every sigma")
    sigmas: list[float] = option(
        help="noise levels scored (one per sigma bucket by default)",
        factory=lambda: [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95],
    )

    def validate(self) -> None:
        if self.every < 0 or self.items < 2:
            raise ValueError(f"every/items: need every >= 0 and items >= 2, got {self.every}, {self.items}")
        if not self.sigmas or any(not 0.0 < s < 1.0 for s in self.sigmas):
            raise ValueError(f"sigmas: need values in (0, 1), got {self.sigmas}")


@dataclasses.dataclass
class SFTConfig(TrainConfig):
    """Stage 1: the identity branch (and optional backbone LoRA) trained on an SFT manifest, from a base model.

    The backbone, the representation and the prompt length come from ``base``; the backbone is frozen.
    """

    out: str = option("runs/sft", "run folder: checkpoints, logs, samples, final identity branch")
    base: str = option(BASE, "exported base model folder (transformer/ + train_config.json)")
    init: str = option(
        "", "start from a finished SFT or DPO run, or an exported IdGlow model (e.g. assets/idglow): its base, identity "
        "branch and LoRA (a DPO run's stacked on its SFT run's) are the starting weights, and `model.identity` and "
        "`model.lora` come from it; optimizer, schedule and step start afresh. Empty: a new branch at zero")
    model: ModelConfig = option(help="the model: identity branch, gate and LoRA (backbone from `base`)", factory=_sft_model)
    optim: OptimConfig = option(help="optimisation", factory=_sft_optim)
    log: LogConfig = option(help="logging, checkpoints and samples", factory=_sft_log)
    identity_loss: IdentityLossConfig = option(help="identity loss", factory=IdentityLossConfig)
    references: ReferenceConfig = option(help="reference embeddings (photos: dlib or insightface)", factory=ReferenceConfig)
    diagnostics: DiagnosticsConfig = option(help="held-out binding diagnostic", factory=DiagnosticsConfig)

    def validate(self) -> None:
        super().validate()
        validate_sections(self, "identity_loss", "references", "diagnostics")
