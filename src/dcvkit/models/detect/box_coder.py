"""Box-regression targets: the R-CNN parameterisation of a box relative to a proposal.

For a proposal ``P`` (centre ``px, py``, size ``pw, ph``) and a target box ``G``::

    dx = wx (gx - px) / pw     dy = wy (gy - py) / ph     dw = ww log(gw / pw)     dh = wh log(gh / ph)

with weights ``(wx, wy, ww, wh) = (10, 10, 5, 5)`` as in Fast/Faster R-CNN (they scale the targets to unit
variance, roughly). Boxes are ``x1, y1, x2, y2`` pixel edges, so ``w = x2 - x1`` (no ``+ 1``).

torchvision has the same coder only as a private class (``torchvision.models.detection._utils.BoxCoder``);
these two functions are ours so the public API does not lean on a private one.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

WEIGHTS = (10.0, 10.0, 5.0, 5.0)
# exp() of a predicted log-size is clamped so a wild prediction cannot overflow (torchvision's value).
MAX_LOG_SCALE = math.log(1000.0 / 16)


def _centre_size(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h


def encode(proposals: Tensor, targets: Tensor, weights: tuple[float, ...] = WEIGHTS) -> Tensor:
    """Deltas (..., 4) that move ``proposals`` (..., 4) onto ``targets`` (..., 4)."""
    px, py, pw, ph = _centre_size(proposals.float())
    gx, gy, gw, gh = _centre_size(targets.float())
    wx, wy, ww, wh = weights
    return torch.stack([wx * (gx - px) / pw, wy * (gy - py) / ph,
                        ww * torch.log(gw / pw), wh * torch.log(gh / ph)], -1)


def decode(deltas: Tensor, proposals: Tensor, weights: tuple[float, ...] = WEIGHTS) -> Tensor:
    """Boxes (..., 4) from ``deltas`` (..., 4) applied to ``proposals`` (broadcast against ``deltas``)."""
    px, py, pw, ph = _centre_size(proposals.float())
    wx, wy, ww, wh = weights
    dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
    dw = (deltas[..., 2] / ww).clamp(max=MAX_LOG_SCALE)
    dh = (deltas[..., 3] / wh).clamp(max=MAX_LOG_SCALE)
    cx, cy = px + dx * pw, py + dy * ph
    w, h = pw * torch.exp(dw), ph * torch.exp(dh)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)


__all__ = ["encode", "decode", "WEIGHTS"]
