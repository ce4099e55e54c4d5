"""Face embedders of stage 1: the frozen, differentiable recognizer of the identity loss (it embeds the faces of
``x0_hat`` and their targets), and the embedder of the references (the identity branch's input with
``identity.encoder: embedding``), which is the recognizer or, on photos, a face backend (dlib, insightface)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from idglow.cast.crops import to_uint8
from idglow.cast.judge_training import load_embedder
from idglow.faces.base import unit
from idglow.faces.iresnet import load_arcface


class EmbedderEnsemble(torch.nn.Module):
    """Several frozen embedders as one: crops [M, 3, h, w] -> the members' unit embeddings, each scaled by
    sqrt(w_k / sum w) and concatenated, [M, sum E_k over members with w_k > 0]. The result is a unit vector, and the
    cosine of two such vectors is the w-weighted mean of the members' cosines (equal weights by default), so
    ``1 - cos`` of the identity loss is the weighted mean of each member's.

    ``primary`` (the first member) is what embeds references for the identity branch: the branch reads one
    embedder's space whatever the loss averages over, even when its own weight in the loss is 0 (it is then never run
    on the faces).
    """

    def __init__(self, members: list[torch.nn.Module], weights: list[float] | None = None):
        super().__init__()
        if not members:
            raise ValueError("EmbedderEnsemble: needs at least one member")
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"EmbedderEnsemble: needs one non-negative weight per member with a positive sum, got "
                             f"{weights} for {len(members)} members")
        self.members = torch.nn.ModuleList(members)
        self.scales = [(w / sum(weights)) ** 0.5 for w in weights]
        self.head = SimpleNamespace(out_features=sum(m.head.out_features for m, s in zip(members, self.scales) if s > 0))

    @property
    def primary(self) -> torch.nn.Module:
        return self.members[0]

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.nn.functional.normalize(m(crops), dim=-1) * s
                          for m, s in zip(self.members, self.scales) if s > 0], dim=-1)


def load_recognizer(loss_cfg, extras: bool = True) -> torch.nn.Module:
    """``identity_loss.recognizer`` of an ``IdentityLossConfig``: the cast ``encoder`` (with
    ``identity_loss.extra_embedders`` and ``extras``: an :class:`EmbedderEnsemble` of it, weighted by
    ``encoder_weight``, and those, weighted 1 each) or an ArcFace
    IResNet.

    Returns a module mapping face crops [M, 3, h, w] in [-1, 1] to unit embeddings [M, E], frozen, eval mode.
    """
    if loss_cfg.recognizer == "arcface":
        return load_arcface(loss_cfg.arcface)
    encoder = load_embedder(loss_cfg.judges, "encoder")
    if not (extras and loss_cfg.extra_embedders):
        return encoder
    extra = [load_embedder(loss_cfg.judges, n) for n in loss_cfg.extra_embedders]
    return EmbedderEnsemble([encoder, *extra], [loss_cfg.encoder_weight, *[1.0] * len(extra)])


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


class FeatureMapEmbedder(torch.nn.Module):
    """A frozen cast embedder's unit embedding with its last feature map, for ``identity.encoder: embedding_map``:
    crops [M, 3, S, S] -> [M, E + 16*C], the embedding [E] then the map average-pooled to 4x4, position-major
    [16, C] flattened (the layout :class:`idglow.identity.encoder.EmbeddingMapResampler` reads)."""

    def __init__(self, embedder: torch.nn.Module):
        super().__init__()
        self.embedder = embedder
        self.map_dim = embedder.blocks[-1][0].out_channels  # each block is conv, norm, activation
        self.head = SimpleNamespace(out_features=embedder.head.out_features + 16 * self.map_dim)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        features = self.embedder.feature_map(crops)
        grid = torch.nn.functional.adaptive_avg_pool2d(features, 4)
        return torch.cat([self.embedder.embed(features), grid.flatten(2).transpose(1, 2).flatten(1)], dim=-1)


def load_reference_embedder(cfg, recognizer: torch.nn.Module | None = None) -> torch.nn.Module:
    """What embeds the references of an ``SFTConfig`` (``references.backend``): the recognizer (``recognizer`` when
    already loaded), dlib or insightface; for ``identity.encoder: embedding_map``, the recognizer's embedding and
    feature map (:class:`FeatureMapEmbedder`)."""
    backend = cfg.references.backend
    identity = cfg.model.identity
    if identity.encoder == "embedding_map" and backend != "recognizer":
        raise ValueError(f"references.backend: {backend} gives embeddings without a feature map; identity.encoder: "
                         "embedding_map reads the cast `encoder`'s map (references.backend: recognizer), or use "
                         "identity.encoder: embedding")
    if backend == "dlib":
        from idglow.faces.dlib_faces import DlibFaces

        embedder = BackendEmbedder(DlibFaces())
    elif backend == "insightface":
        from idglow.faces.insightface_faces import InsightFaceFaces

        embedder = BackendEmbedder(InsightFaceFaces(cfg.references.model_dir))
    else:
        # the loss's extra embedders never embed references: sampling needs only the encoder
        embedder = recognizer if recognizer is not None else load_recognizer(cfg.identity_loss, extras=False)
        embedder = getattr(embedder, "primary", embedder)
    if identity.reads_embeddings and embedder.head.out_features != identity.embedding_dim:
        raise ValueError(f"identity.embedding_dim: {identity.embedding_dim}, but the reference embedder "
                         f"({backend}) gives {embedder.head.out_features}-d embeddings")
    if identity.encoder == "embedding_map":
        if not hasattr(embedder, "feature_map"):
            raise ValueError(f"identity.encoder: embedding_map reads a cast embedder's feature map, and the reference "
                             f"embedder is {type(embedder).__name__} (identity_loss.recognizer: "
                             f"{cfg.identity_loss.recognizer}); use identity.encoder: embedding")
        embedder = FeatureMapEmbedder(embedder)
        if embedder.map_dim != identity.map_dim:
            raise ValueError(f"identity.map_dim: {identity.map_dim}, but the reference embedder's feature map has "
                             f"{embedder.map_dim} channels")
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
    if identity.encoder == "embedding_map":
        raise ValueError("identity.encoder: embedding_map reads the cast `encoder`'s feature map, which knows only "
                         "synthetic faces; on photos use identity.encoder: embedding with references.backend: dlib "
                         "(offline, 128-d) or insightface")
    if identity.reads_embeddings and cfg.references.backend == "recognizer":
        raise ValueError(
            "references.backend: identity.encoder: embedding reads face embeddings of the references, and the cast "
            "`encoder` knows only synthetic faces. Set references.backend: dlib (offline, 128-d) or insightface "
            "(with references.model_dir), or identity_loss.recognizer: arcface with identity_loss.arcface")
