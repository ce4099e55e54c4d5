"""Identity encoders: one reference (a face crop, or a frozen face embedding) -> K identity tokens.

Both backends share one interface, :class:`IdentityEncoder`: ``forward(refs [M, ...]) -> [M, K, D]``
over a flat batch of M references; the branch scatters the results back to ``[B, N, K, D]``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class IdentityEncoder(nn.Module):
    """Base class: maps M references to M token groups [M, K, D]."""

    num_tokens: int
    token_dim: int

    def reference_shape(self) -> tuple[int | None, ...]:
        """Trailing shape of one reference; ``None`` marks a free size."""
        raise NotImplementedError

    def check_references(self, refs: torch.Tensor) -> None:
        """Raise ValueError naming ``refs`` when its trailing shape does not fit this encoder."""
        expected = self.reference_shape()
        trailing = tuple(refs.shape[2:])
        ok = len(trailing) == len(expected) and all(e is None or e == t for e, t in zip(expected, trailing))
        if refs.ndim < 2 or not ok:
            shape = ", ".join("*" if e is None else str(e) for e in expected)
            raise ValueError(
                f"refs: {type(self).__name__} expects [B, N, {shape}], got {tuple(refs.shape)}"
            )


class _TokenPooler(nn.Module):
    """K learned queries attend over a set of features (a one-layer Perceiver resampler)."""

    def __init__(self, feature_dim: int, num_tokens: int, token_dim: int, heads: int = 4):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_tokens, token_dim) * token_dim**-0.5)
        self.proj_in = nn.Linear(feature_dim, token_dim)
        self.attn = nn.MultiheadAttention(token_dim, heads if token_dim % heads == 0 else 1, batch_first=True)
        self.norm = nn.LayerNorm(token_dim)
        self.mlp = nn.Sequential(nn.Linear(token_dim, 2 * token_dim), nn.GELU(), nn.Linear(2 * token_dim, token_dim))
        self.norm_out = nn.LayerNorm(token_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features [M, F_tokens, feature_dim] -> tokens [M, K, token_dim]."""
        kv = self.proj_in(features)
        q = self.queries.expand(features.shape[0], -1, -1)
        x = q + self.attn(q, kv, kv, need_weights=False)[0]
        x = x + self.mlp(self.norm(x))
        return self.norm_out(x)


class ConvFaceEncoder(IdentityEncoder):
    """Trainable convolutional encoder for small face crops (the synthetic cast's references).

    Three stride-2 convolutions, adaptive pooling to a 4x4 grid with a learned position embedding,
    then K learned queries attend over the 16 grid features. Any crop size >= 16 px works.
    """

    GRID = 4

    def __init__(self, num_tokens: int, token_dim: int, width: int = 64):
        super().__init__()
        self.num_tokens, self.token_dim = num_tokens, token_dim
        c1, c2 = max(width // 4, 8), max(width // 2, 8)
        self.trunk = nn.Sequential(
            nn.Conv2d(3, c1, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(c2, width, 3, stride=2, padding=1),
            nn.SiLU(),
        )
        self.position = nn.Parameter(torch.zeros(self.GRID * self.GRID, width))
        self.pool = _TokenPooler(width, num_tokens, token_dim)

    def reference_shape(self) -> tuple[int | None, ...]:
        return (3, None, None)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """crops [M, 3, H, W] in [-1, 1] -> tokens [M, K, D]."""
        if crops.shape[-1] < 16 or crops.shape[-2] < 16:
            raise ValueError(f"refs: face crops must be at least 16x16 pixels, got {tuple(crops.shape[-2:])}")
        features = F.adaptive_avg_pool2d(self.trunk(crops), self.GRID)
        features = features.flatten(2).transpose(1, 2) + self.position
        return self.pool(features)


class EmbeddingResampler(IdentityEncoder):
    """Trainable resampler from a frozen face-recognition embedding (dlib 128-d, ArcFace 512-d) to K tokens.

    The embedding is L2-normalised first (dlib's vectors are not unit length), then an MLP writes K
    tokens, as in IP-Adapter-FaceID / PuLID-style projection models.
    """

    def __init__(self, embedding_dim: int, num_tokens: int, token_dim: int):
        super().__init__()
        self.embedding_dim, self.num_tokens, self.token_dim = embedding_dim, num_tokens, token_dim
        hidden = 2 * token_dim
        self.mlp = nn.Sequential(
            nn.Linear(embedding_dim, hidden), nn.GELU(), nn.Linear(hidden, num_tokens * token_dim)
        )
        self.norm = nn.LayerNorm(token_dim)

    def reference_shape(self) -> tuple[int | None, ...]:
        return (self.embedding_dim,)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """embeddings [M, E] -> tokens [M, K, D]."""
        tokens = self.mlp(F.normalize(embeddings, dim=-1))
        return self.norm(tokens.view(-1, self.num_tokens, self.token_dim))


class EmbeddingMapResampler(EmbeddingResampler):
    """An :class:`EmbeddingResampler` that also reads the frozen embedder's feature map before its pooling.

    A reference is one row [E + G*C]: the unit embedding [E] the plain resampler reads, then the embedder's last
    map pooled to a 4x4 grid, position-major [G=16, C] flattened. The pooled embedding averages over the face, so where
    a feature lies (eye spacing, face aspect) barely reaches it; the grid keeps it. K learned queries attend over the
    16 grid cells (a one-layer Perceiver resampler, as in the paper's figure: tokens per reference, not one vector),
    and a zero-initialised projection adds what they read to the plain resampler's K tokens. So at initialisation the
    tokens are exactly the plain resampler's, and a branch trained with ``encoder: embedding`` loads into this one
    unchanged (``idglow.models.io.start_identity_branch``).
    """

    GRID = 16

    def __init__(self, embedding_dim: int, map_dim: int, num_tokens: int, token_dim: int):
        super().__init__(embedding_dim, num_tokens, token_dim)
        self.map_dim = map_dim
        self.map_norm = nn.LayerNorm(map_dim)
        # not zero: the queries can tell the cells apart from the first step, and where a feature lies is the point
        self.map_position = nn.Parameter(torch.randn(self.GRID, map_dim) * 0.1)
        self.map_pool = _TokenPooler(map_dim, num_tokens, token_dim)
        self.map_out = nn.Linear(token_dim, token_dim)
        nn.init.zeros_(self.map_out.weight)
        nn.init.zeros_(self.map_out.bias)

    def reference_shape(self) -> tuple[int | None, ...]:
        return (self.embedding_dim + self.GRID * self.map_dim,)

    def forward(self, references: torch.Tensor) -> torch.Tensor:
        """references [M, E + 16*C] -> tokens [M, K, D]."""
        pooled, grid = references.split([self.embedding_dim, self.GRID * self.map_dim], dim=-1)
        grid = self.map_norm(grid.reshape(-1, self.GRID, self.map_dim)) + self.map_position
        return super().forward(pooled) + self.map_out(self.map_pool(grid))


def build_identity_encoder(kind: str, num_tokens: int, token_dim: int, width: int, embedding_dim: int,
                           map_dim: int = 128) -> IdentityEncoder:
    """The encoder named by ``kind`` (``conv``, ``embedding`` or ``embedding_map``)."""
    if kind == "conv":
        return ConvFaceEncoder(num_tokens, token_dim, width)
    if kind == "embedding":
        return EmbeddingResampler(embedding_dim, num_tokens, token_dim)
    if kind == "embedding_map":
        return EmbeddingMapResampler(embedding_dim, map_dim, num_tokens, token_dim)
    raise ValueError(f"encoder: unknown identity encoder {kind!r}; choose conv, embedding or embedding_map")
