"""A differentiable ArcFace recognizer for the identity loss on real photos: IResNet from a user's safetensors file.

The architecture is insightface's ``arcface_torch`` IResNet (iresnet18/34/50/100), with the same parameter
names, so a checkpoint of that family converted to safetensors loads as it is::

    python -c "import torch, safetensors.torch as st; st.save_file(torch.load('backbone.pth', weights_only=True), 'arcface.safetensors')"

No weights ship with IdGlow and none are downloaded. Only safetensors files are read (never a pickle).
The depth is read from the file's keys. Input: face crops in [-1, 1], resized here to 112 x 112.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

IRESNET_LAYERS = {"iresnet18": (2, 2, 2, 2), "iresnet34": (3, 4, 6, 3), "iresnet50": (3, 4, 14, 3),
                  "iresnet100": (3, 13, 30, 3)}
WIDTHS = (64, 128, 256, 512)


class IBasicBlock(nn.Module):
    """BN - conv3x3 - BN - PReLU - conv3x3(stride) - BN, plus the (downsampled) input."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """insightface's IResNet: [B, 3, 112, 112] in [-1, 1] -> features [B, 512] (not normalised)."""

    def __init__(self, layers: tuple[int, int, int, int], embedding_dim: int = 512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        for i, (count, planes) in enumerate(zip(layers, WIDTHS)):
            blocks = [IBasicBlock(inplanes, planes, 2)] + [IBasicBlock(planes, planes) for _ in range(count - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            inplanes = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(512 * 7 * 7, embedding_dim)
        self.features = nn.BatchNorm1d(embedding_dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


class ArcFaceRecognizer(nn.Module):
    """Frozen IResNet as a face embedder: crops [M, 3, h, w] in [-1, 1] -> unit embeddings [M, 512].

    Differentiable in the crops (the identity loss back-propagates through it); always in eval mode.
    """

    def __init__(self, net: IResNet):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.head = net.fc  # ``frozen_embeddings`` reads the embedding size from ``head.out_features``

    def train(self, mode: bool = True) -> ArcFaceRecognizer:
        return super().train(False)  # batch-norm statistics of a recognizer are never updated

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        if crops.ndim != 4 or crops.shape[1] != 3:
            raise ValueError(f"crops: expected [M, 3, h, w], got {tuple(crops.shape)}")
        x = F.interpolate(crops, size=(112, 112), mode="bilinear", align_corners=False, antialias=crops.shape[-1] > 112)
        return F.normalize(self.net(x.to(self.net.conv1.weight.dtype)).float(), dim=-1)


def iresnet_layers(state: dict[str, torch.Tensor]) -> tuple[int, int, int, int]:
    """Blocks per stage of an IResNet state dict, from its ``layer{i}.{j}.`` keys."""
    counts = []
    for stage in range(1, 5):
        blocks = {int(k.split(".")[1]) for k in state if k.startswith(f"layer{stage}.")}
        if not blocks:
            raise ValueError(f"no layer{stage}.* weights: not an insightface IResNet state dict")
        counts.append(max(blocks) + 1)
    return tuple(counts)


def load_arcface(path: str | Path) -> ArcFaceRecognizer:
    """The recognizer in the safetensors file ``path`` (an insightface IResNet state dict).

    Raises:
        FileNotFoundError: no such file; ValueError: not a safetensors IResNet (the message says why).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"identity_loss.arcface: no file {path}")
    if path.suffix != ".safetensors":
        raise ValueError(f"identity_loss.arcface: {path} is not a .safetensors file; convert the checkpoint first "
                         "(see idglow.faces.iresnet); pickled files are never read")
    state = load_file(path)
    try:
        net = IResNet(iresnet_layers(state), embedding_dim=state["fc.weight"].shape[0])
        net.load_state_dict(state, strict=True)
    except (KeyError, ValueError, RuntimeError) as err:
        raise ValueError(f"identity_loss.arcface: {path}: not an insightface IResNet checkpoint ({err})") from None
    return ArcFaceRecognizer(net)
