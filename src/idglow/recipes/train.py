"""Configuration of the trainer (``idglow train base``; the SFT and DPO stages extend it)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from idglow.conditioning.config import RepresentationConfig, TextConfig
from idglow.flow import LOSS_WEIGHTINGS, TIMESTEP_SAMPLERS
from idglow.models import ModelConfig
from idglow.utils.config import option, require_min, validate_sections
from idglow.utils.defaults import SFT_TRAIN


def _base_model() -> ModelConfig:
    return ModelConfig(preset="small", text_dim=384)


@dataclasses.dataclass
class DataConfig:
    """Where training images and captions come from."""

    manifests: list[str] = option(
        help="SFT manifests (images + prompts); the base model uses only the images and prompts",
        factory=lambda: list(SFT_TRAIN),
    )
    max_tokens: int = option(64, "prompt length in tokens (MiniLM; T5 for FLUX, whose dev model uses 512), padded or truncated")
    cache_dir: str | None = option(
        None, "disk cache of prompt embeddings and image latents, shared by runs (`idglow cache build` fills it; "
        "null = in memory only)")
    stream: bool = option(
        False, "read each batch's images (and references) from the shards or files instead of loading the set into "
        "memory: memory stays flat in the set's size; latents are encoded per batch (read from data.cache_dir when "
        "set) and prompt embeddings kept for the last 1,024 prompts. Same batches as the in-memory path; SFT and base")

    def validate(self) -> None:
        if not self.manifests:
            raise ValueError("manifests: give at least one manifest")
        if self.max_tokens < 4:
            raise ValueError(f"max_tokens: must be >= 4, got {self.max_tokens}")


@dataclasses.dataclass
class OptimConfig:
    """Optimisation."""

    steps: int = option(1000, "optimisation steps")
    max_minutes: float = option(0.0, "stop (checkpoint, final weights) after this much wall-clock time in this process (0 = no limit)")
    batch_size: int = option(16, "images per process per micro-batch")
    grad_accum: int = option(1, "micro-batches per optimisation step")
    lr: float = option(3e-4, "peak learning rate (AdamW)")
    lora_lr: float | None = option(None, "peak learning rate of LoRA parameters on the backbone (null = lr)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup_steps: int = option(100, "linear warm-up steps")
    schedule: Literal["constant", "cosine", "linear"] = option("cosine", "learning-rate schedule after warm-up")
    grad_clip: float = option(1.0, "clip the gradient norm to this (0 = off)")
    ema_decay: float = option(0.0, "EMA decay of the trained weights (0 = no EMA)")
    mixed_precision: Literal["no", "bf16"] = option("no", "autocast precision of the forward and backward passes")
    attention_fp32: bool = option(
        False, "with mixed_precision bf16: keep scaled-dot-product attention in fp32 (its bf16 backward is slower than "
        "fp32 on CPUs; benchmarks/cpu_speed.py)")
    weights_dtype: Literal["fp32", "bf16"] = option(
        "fp32", "storage of the frozen weights (bf16 halves a 12 B backbone to 24 GB); trained ones stay fp32")
    gradient_checkpointing: bool = option(False, "recompute each backbone block in the backward pass (less memory, ~1.5x time)")
    optimizer: Literal["adamw", "adamw8bit"] = option(
        "adamw", "adamw (torch) or adamw8bit (bitsandbytes, `pip install idglow[gpu]`: 8-bit optimiser states)")
    cudnn_attention: bool = option(
        False, "let PyTorch's SDPA use cuDNN attention on CUDA (off: flash / memory-efficient kernels; see README, "
        "cuDNN's backward failed on an H200 with torch 2.11)")

    def validate(self) -> None:
        require_min(self, 1, "steps", "batch_size", "grad_accum")
        for name in ("lr", "lora_lr"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}: must be positive, got {value}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay: must lie in [0, 1), got {self.ema_decay}")
        if self.attention_fp32 and self.mixed_precision != "bf16":
            raise ValueError("attention_fp32: only means something with mixed_precision: bf16")
        if self.weights_dtype == "bf16" and self.mixed_precision != "bf16":
            raise ValueError("weights_dtype: bf16 weights need mixed_precision: bf16 (inputs are autocast to them)")


@dataclasses.dataclass
class FlowConfig:
    """Flow-matching objective."""

    sampler: Literal["uniform", "logit_normal", "mode"] = option("logit_normal", f"training sigma density: {TIMESTEP_SAMPLERS}")
    logit_mean: float = option(0.0, "logit_normal mean")
    logit_std: float = option(1.0, "logit_normal standard deviation")
    mode_scale: float = option(1.29, "mode density scale")
    shift: Literal["none", "resolution"] = option(
        "resolution", "none, or FLUX's resolution-dependent shift from the image token count (training and sampling)"
    )
    weighting: Literal["none", "sigma_sqrt", "cosmap"] = option("none", f"per-sample loss weighting: {LOSS_WEIGHTINGS}")


@dataclasses.dataclass
class LogConfig:
    """What the trainer writes while it runs."""

    log_every: int = option(20, "steps between log lines (loss, loss by sigma bucket, images/s)")
    checkpoint_every: int = option(200, "steps between resumable checkpoints")
    keep_checkpoints: int = option(2, "most recent checkpoints kept")
    sample_every: int = option(500, "steps between sample grids (0 = only at the end)")
    num_samples: int = option(8, "images per sample grid (fixed prompts and seeds)")
    sample_steps: int = option(20, "Euler steps of the sample grids")
    tensorboard: bool = option(True, "also log to TensorBoard through accelerate")
    progress: bool = option(True, "show a progress bar")

    def validate(self) -> None:
        require_min(self, 1, "log_every", "checkpoint_every", "keep_checkpoints", "num_samples", "sample_steps")


@dataclasses.dataclass
class TrainConfig:
    """A training run: model, data, representation, objective, optimisation and logging."""

    out: str = option("runs/base", "run folder: checkpoints, logs, samples, final weights")
    seed: int = option(0, "seed of initialisation, data order, noise and sigmas")
    model: ModelConfig = option(help="the model (the base model trains the backbone only)", factory=_base_model)
    data: DataConfig = option(help="training data", factory=DataConfig)
    representation: RepresentationConfig = option(help="pixels or latents", factory=RepresentationConfig)
    text: TextConfig = option(help="prompt encoder", factory=TextConfig)
    flow: FlowConfig = option(help="flow-matching objective", factory=FlowConfig)
    optim: OptimConfig = option(help="optimisation", factory=OptimConfig)
    log: LogConfig = option(help="logging, checkpoints and samples", factory=LogConfig)
    resume_changed: bool = option(
        False, "resume from the run folder's newest checkpoint even where this config differs from the one it was "
        "trained with (the differences are printed); without it such a resume is refused. optim.steps, "
        "optim.max_minutes and log.* may always change")

    def validate(self) -> None:
        validate_sections(self, "model", "data", "representation", "text", "optim", "log")
