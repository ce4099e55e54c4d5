"""Square face crops around boxes: one differentiable implementation for references, judges and losses."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

CROP_SIZE = 32
CROP_EXPAND = 1.3


def face_crops(
    images: torch.Tensor,
    boxes: torch.Tensor,
    index: torch.Tensor | None = None,
    size: int = CROP_SIZE,
    expand: float = CROP_EXPAND,
) -> torch.Tensor:
    """Bilinear square crops centred on face boxes (differentiable in ``images``).

    Args:
        images: [B, C, H, W] float.
        boxes: [M, 4] ``[x0, y0, x1, y1]`` in pixels of ``images``.
        index: [M] which image each box belongs to (default: box m in image m, or all in the only image).
        size: side of the output crops.
        expand: side of the square crop relative to the box's longer side.

    Returns:
        crops [M, C, size, size]; outside the image is filled with the nearest border pixel.
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes: expected [M, 4], got {tuple(boxes.shape)}")
    if index is None:
        if images.shape[0] not in (1, boxes.shape[0]):
            raise ValueError(f"index: needed when {boxes.shape[0]} boxes come from {images.shape[0]} images")
        index = torch.arange(boxes.shape[0], device=boxes.device) % images.shape[0]
    _, _, h, w = images.shape
    boxes = boxes.to(images.dtype)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    side = expand * torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).clamp_min(1.0)
    theta = torch.zeros(boxes.shape[0], 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = side / w
    theta[:, 1, 1] = side / h
    theta[:, 0, 2] = 2 * cx / w - 1
    theta[:, 1, 2] = 2 * cy / h - 1
    grid = F.affine_grid(theta, [boxes.shape[0], images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images[index], grid, mode="bilinear", padding_mode="border", align_corners=False)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [3, H, W] in [-1, 1] (the project's image convention)."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(127.5).sub(1.0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """float [3, H, W] (or [B, 3, H, W]) in [-1, 1] -> uint8 [H, W, 3] (or [B, H, W, 3]), rounded: the one conversion."""
    return image.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte().movedim(-3, -1).cpu().numpy()


def reference_grid(crops: torch.Tensor, height: int) -> np.ndarray:
    """Up to four reference crops [N, 3, h, w] tiled 2x2 into a ``height``-pixel square (uint8 [H, H, 3])."""
    tile = np.zeros((height, height, 3), dtype=np.uint8)
    half = height // 2
    for k, crop in enumerate(crops[:4]):
        small = torch.nn.functional.interpolate(crop[None], size=(half, half), mode="bilinear", align_corners=False)[0]
        r, c = divmod(k, 2)
        tile[r * half : (r + 1) * half, c * half : (c + 1) * half] = to_uint8(small)
    return tile
