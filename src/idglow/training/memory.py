"""Memory and speed switches of the trainers (``optim.*``): frozen weights in bf16, gradient checkpointing,
8-bit AdamW, and the attention kernels PyTorch may use. Each is a documented config key; none changes the
maths beyond rounding."""

from __future__ import annotations

import torch
import torch.utils.checkpoint
from diffusers.training_utils import cast_training_params

from idglow.utils.precision import fp32_attention


def apply_memory_options(model, optim, device: torch.device) -> None:
    """Apply ``optim.weights_dtype``, ``optim.gradient_checkpointing`` and ``optim.cudnn_attention`` to ``model``
    (an :class:`~idglow.models.IdGlowTransformer` whose trained parameters already have ``requires_grad``)."""
    if optim.weights_dtype == "bf16":
        model.to(torch.bfloat16)
        cast_training_params(model, dtype=torch.float32)  # only the frozen weights stay in bf16
    if optim.gradient_checkpointing:
        model.flux.enable_gradient_checkpointing(_checkpoint_in_fp32_attention if optim.attention_fp32 else None)
    if torch.device(device).type == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(optim.cudnn_attention)


def _checkpoint_in_fp32_attention(module, *args):
    """diffusers' default checkpointing (non-reentrant), with the recomputation in the backward pass run under the
    same fp32 attention as the forward (``optim.attention_fp32``); otherwise recomputed tensors change dtype."""
    return torch.utils.checkpoint.checkpoint(module.__call__, *args, use_reentrant=False,
                                             context_fn=lambda: (fp32_attention(), fp32_attention()))


def make_optimizer(groups: list[dict], optim) -> torch.optim.Optimizer:
    """AdamW over parameter ``groups``: torch's, or bitsandbytes' 8-bit one for ``optim.optimizer: adamw8bit``."""
    if optim.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise ImportError("optim.optimizer: adamw8bit needs bitsandbytes (`pip install idglow[gpu]`)") from None
        return bnb.optim.AdamW8bit(groups, lr=optim.lr, weight_decay=optim.weight_decay)
    return torch.optim.AdamW(groups, lr=optim.lr, weight_decay=optim.weight_decay)
