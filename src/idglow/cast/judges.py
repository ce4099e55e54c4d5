"""The cast's judges: small CNNs trained on cast renders only, never used as training losses
(except ``encoder``, the differentiable identity embedder the SFT identity loss is built on).

- :class:`FaceDetector`: CenterNet-style face centres, sizes and offsets at stride 4;
- :class:`IdentityEmbedder`: face crop -> unit identity embedding; two independent instances,
  ``encoder`` and ``judge``, with different architectures and seeds;
- :class:`CropClassifier`: face crop -> age class (adult, child); torso crop -> clothing colour.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DETECTOR_STRIDE = 4


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class FaceDetector(nn.Module):
    """images [B, 3, H, W] in [-1, 1] -> heatmap logits [B, 1, H/4, W/4] and box [B, 4, H/4, W/4]
    (width and height in units of 16 px, sub-cell x and y offsets)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            _conv(3, width // 2),
            _conv(width // 2, width, stride=2),
            _conv(width, width * 2, stride=2),
            _conv(width * 2, width * 2, dilation=2),
            _conv(width * 2, width * 2, dilation=4),
            _conv(width * 2, width * 2, dilation=2),
        )
        self.heatmap = nn.Conv2d(width * 2, 1, 1)
        self.box = nn.Conv2d(width * 2, 4, 1)
        nn.init.constant_(self.heatmap.bias, -2.19)  # prior 0.1, as in CenterNet

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(images)
        return self.heatmap(features), self.box(features)

    @torch.no_grad()
    def detect(self, images: torch.Tensor, threshold: float = 0.35, max_faces: int = 8) -> list[torch.Tensor]:
        """Face boxes per image: a list of B tensors [F, 5] = ``[x0, y0, x1, y1, score]`` in pixels."""
        logits, box = self(images)
        heat = torch.sigmoid(logits)
        peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
        results = []
        w_cells = heat.shape[-1]
        for b in range(images.shape[0]):
            scores, idx = peaks[b, 0].flatten().topk(min(max_faces, peaks[b, 0].numel()))
            keep = scores > threshold
            scores, idx = scores[keep], idx[keep]
            ys, xs = (idx // w_cells).float(), (idx % w_cells).float()
            params = box[b].flatten(1)[:, idx]
            cx = (xs + 0.5 + params[2]) * DETECTOR_STRIDE
            cy = (ys + 0.5 + params[3]) * DETECTOR_STRIDE
            bw, bh = params[0].clamp_min(0.05) * 16, params[1].clamp_min(0.05) * 16
            results.append(torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, scores], dim=1))
        return results


class IdentityEmbedder(nn.Module):
    """face crops [M, 3, S, S] in [-1, 1] -> unit embeddings [M, dim]; S is 32 for every shipped judge, and any
    multiple of 8 from 32 up is read (larger crops keep a large face's detail: three stride-2 stages leave an S/8
    map, which the flattened heads average-pool to the 4x4 they were built for).

    ``arch="resnet"`` (the ``encoder``): residual blocks, global average pooling.
    ``arch="plain"`` (the ``judge``): a plain VGG-style stack with a 5x5 stem and a flattened head.
    ``arch="spatial"``: the ``encoder``'s residual blocks with a flattened head instead of the pooling, so where a
    feature lies (eye spacing, face aspect) reaches the embedding; an extra embedder of the identity loss.
    """

    def __init__(self, arch: str = "resnet", dim: int = 128, width: int = 32):
        super().__init__()
        self.arch = arch
        if arch in ("resnet", "spatial"):
            self.stem = _conv(3, width, stride=2)
            self.blocks = nn.ModuleList([_conv(width, width), _conv(width, 2 * width, stride=2), _conv(2 * width, 2 * width),
                                         _conv(2 * width, 4 * width, stride=2), _conv(4 * width, 4 * width)])
            # 32x32 crops leave a 4x4 map after three stride-2 convolutions
            self.head = nn.Linear(4 * width * (16 if arch == "spatial" else 1), dim)
        elif arch == "plain":
            self.stem = nn.Sequential(nn.Conv2d(3, width, 5, stride=2, padding=2), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
            self.blocks = nn.ModuleList([_conv(width, width + 16, stride=2), _conv(width + 16, 2 * width + 16, stride=2),
                                         _conv(2 * width + 16, 2 * width + 16)])
            self.head = nn.Linear((2 * width + 16) * 16, dim)
        else:
            raise ValueError(f"arch: unknown embedder architecture {arch!r}; choose resnet, plain or spatial")

    def feature_map(self, crops: torch.Tensor) -> torch.Tensor:
        """crops [M, 3, S, S] -> the last block's map [M, C, S/8, S/8], before the head pools or flattens it."""
        x = self.stem(crops)
        for block in self.blocks:
            y = block(x)
            x = y + x if self.arch != "plain" and y.shape == x.shape else y
        return x

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.embed(self.feature_map(crops))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """A :meth:`feature_map` [M, C, h, w] -> unit embeddings [M, dim]."""
        if self.arch == "resnet":
            x = x.mean(dim=(2, 3))
        else:
            x = (F.adaptive_avg_pool2d(x, 4) if x.shape[-1] != 4 else x).flatten(1)
        return F.normalize(self.head(x), dim=-1)


class CropClassifier(nn.Module):
    """crops [M, 3, S, S] in [-1, 1] -> class logits [M, num_classes]."""

    def __init__(self, num_classes: int, width: int = 24):
        super().__init__()
        self.body = nn.Sequential(_conv(3, width), _conv(width, 2 * width, stride=2), _conv(2 * width, 2 * width, stride=2))
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(crops).mean(dim=(2, 3)))


def torso_boxes(face_boxes: torch.Tensor) -> torch.Tensor:
    """[M, 4] face boxes -> [M, 4] square boxes on the chest just below each face (clothing colour)."""
    x0, y0, x1, y1 = face_boxes.unbind(-1)
    cx, fw, fh = (x0 + x1) / 2, x1 - x0, y1 - y0
    top = y1 + 0.3 * fh
    return torch.stack([cx - 0.45 * fw, top, cx + 0.45 * fw, top + 0.9 * fw], dim=-1)
