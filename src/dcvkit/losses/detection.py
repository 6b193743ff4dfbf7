"""Fast R-CNN's multi-task loss: classification over classes + background, and smooth-L1 box regression
on the deltas of the true class, for foreground regions only."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def fast_rcnn_loss(logits: Tensor, deltas: Tensor | None, labels: Tensor, targets: Tensor, box_weight: float = 1.0,
                   beta: float = 1.0 / 9) -> tuple[Tensor, Tensor, Tensor]:
    """(total, classification, box) losses.

    Shape:
        logits (K, C + 1); deltas (K, C, 4) or None (a classifier without box head); labels (K,) in 0..C
        (0 = background); targets (K, 4) encoded deltas (used where labels > 0).

    The box term is summed over foreground regions and divided by K, as in torchvision's RoI heads, so
    it weighs the same whatever the foreground share of the sample.
    """
    cls = F.cross_entropy(logits.float(), labels)
    if deltas is None:
        return cls, cls, torch.zeros((), device=logits.device)
    fg = (labels > 0).nonzero().flatten()
    if len(fg) == 0:
        box = deltas.sum() * 0.0
    else:
        pred = deltas[fg, labels[fg] - 1].float()
        box = F.smooth_l1_loss(pred, targets[fg].float(), beta=beta, reduction="sum") / max(len(labels), 1)
    return cls + box_weight * box, cls, box


__all__ = ["fast_rcnn_loss"]
