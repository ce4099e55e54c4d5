"""The frozen, differentiable face embedder of stage 1: it embeds the references (the identity branch's input
with ``identity.encoder: embedding``) and the faces of ``x0_hat`` (the identity loss)."""

from __future__ import annotations

import torch

from idglow.cast.judge_training import load_judges
from idglow.models.iresnet import load_arcface


def load_recognizer(loss_cfg) -> torch.nn.Module:
    """``identity_loss.recognizer`` of an ``IdentityLossConfig``: the cast ``encoder`` or an ArcFace IResNet.

    Returns a module mapping face crops [M, 3, h, w] in [-1, 1] to unit embeddings [M, E], frozen, eval mode.
    """
    if loss_cfg.recognizer == "arcface":
        return load_arcface(loss_cfg.arcface)
    return load_judges(loss_cfg.judges)["encoder"].requires_grad_(False)


def check_recognizer_for_photos(cfg) -> None:
    """On a FLUX base (real photos) the cast encoder is meaningless: refuse it where a recognizer is needed."""
    loss, identity = cfg.identity_loss, cfg.model.identity
    if loss.recognizer != "cast":
        return
    if loss.weight > 0 or identity.encoder == "embedding":
        needs = "identity_loss.weight > 0" if loss.weight > 0 else "identity.encoder: embedding"
        raise ValueError(
            f"identity_loss.recognizer: {needs} needs a face recognizer for real photos, and the cast `encoder` knows "
            "only synthetic faces. Set identity_loss.recognizer: arcface and identity_loss.arcface: "
            "/path/to/iresnet.safetensors (an insightface IResNet; see idglow.models.iresnet), or set "
            "identity_loss.weight: 0 with identity.encoder: conv")
