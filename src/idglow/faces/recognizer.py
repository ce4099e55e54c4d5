"""Face embedders of stage 1: the frozen, differentiable recognizer of the identity loss (it embeds the faces of
``x0_hat`` and their targets), and the embedder of the references (the identity branch's input with
``identity.encoder: embedding``), which is the recognizer or, on photos, a face backend (dlib, insightface)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from idglow.cast.crops import to_uint8
from idglow.cast.judge_training import load_judges
from idglow.faces.base import unit
from idglow.faces.iresnet import load_arcface


def load_recognizer(loss_cfg) -> torch.nn.Module:
    """``identity_loss.recognizer`` of an ``IdentityLossConfig``: the cast ``encoder`` or an ArcFace IResNet.

    Returns a module mapping face crops [M, 3, h, w] in [-1, 1] to unit embeddings [M, E], frozen, eval mode.
    """
    if loss_cfg.recognizer == "arcface":
        return load_arcface(loss_cfg.arcface)
    return load_judges(loss_cfg.judges)["encoder"].requires_grad_(False)


class BackendEmbedder(torch.nn.Module):
    """A face backend (dlib, insightface) as a frozen reference embedder: crops [M, 3, h, w] in [-1, 1] -> unit
    embeddings [M, D] of each crop's largest face. Not differentiable: it embeds references, never ``x0_hat``.

    A crop without a face raises NoFaceError naming its source (``file:line: subjects[i].ref``) when given.
    """

    names_sources = True

    def __init__(self, backend):
        super().__init__()
        self.backend = backend
        self.head = SimpleNamespace(out_features=backend.dim)

    @torch.no_grad()
    def forward(self, crops: torch.Tensor, sources: list[str] | None = None) -> torch.Tensor:
        images = to_uint8(crops)
        names = sources or [f"reference {i}" for i in range(len(images))]
        rows = [unit(self.backend.reference(image, name)[None])[0] for image, name in zip(images, names)]
        return torch.from_numpy(np.stack(rows)).to(crops.device)


def load_reference_embedder(cfg, recognizer: torch.nn.Module | None = None) -> torch.nn.Module:
    """What embeds the references of an ``SFTConfig`` (``references.backend``): the recognizer (``recognizer`` when
    already loaded), dlib or insightface."""
    backend = cfg.references.backend
    if backend == "dlib":
        from idglow.faces.dlib_faces import DlibFaces

        embedder = BackendEmbedder(DlibFaces())
    elif backend == "insightface":
        from idglow.faces.insightface_faces import InsightFaceFaces

        embedder = BackendEmbedder(InsightFaceFaces(cfg.references.model_dir))
    else:
        embedder = recognizer if recognizer is not None else load_recognizer(cfg.identity_loss)
    identity = cfg.model.identity
    if identity.encoder == "embedding" and embedder.head.out_features != identity.embedding_dim:
        raise ValueError(f"identity.embedding_dim: {identity.embedding_dim}, but the reference embedder "
                         f"({backend}) gives {embedder.head.out_features}-d embeddings")
    return embedder


def check_recognizer_for_photos(cfg) -> None:
    """On a FLUX base (real photos) the cast encoder is meaningless: refuse it wherever it would be used."""
    loss, identity = cfg.identity_loss, cfg.model.identity
    if loss.recognizer != "cast":
        return
    if loss.weight > 0:
        raise ValueError(
            "identity_loss.recognizer: identity_loss.weight > 0 needs a differentiable face recognizer for real photos, "
            "and the cast `encoder` knows only synthetic faces. Set identity_loss.recognizer: arcface and "
            "identity_loss.arcface: /path/to/iresnet.safetensors (an insightface IResNet; see idglow.faces.iresnet), "
            "or identity_loss.weight: 0")
    if identity.encoder == "embedding" and cfg.references.backend == "recognizer":
        raise ValueError(
            "references.backend: identity.encoder: embedding reads face embeddings of the references, and the cast "
            "`encoder` knows only synthetic faces. Set references.backend: dlib (offline, 128-d) or insightface "
            "(with references.model_dir), or identity_loss.recognizer: arcface with identity_loss.arcface")
