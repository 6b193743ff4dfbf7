"""Pose losses: the OKS loss (YOLO-pose's: one minus each labelled keypoint's OKS term, so the loss is the
metric's own error, scaled by the object's size and the keypoint's sigma) and the keypoint-presence loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def oks_loss(pred: Tensor, target: Tensor, areas: Tensor, sigmas: Tensor) -> Tensor:
    """Mean over objects of the mean over their labelled keypoints of ``1 - exp(-d^2 / (2 area (2 sigma)^2))``
    (the term COCO's OKS averages; 0 when every keypoint is exact). Objects without a labelled keypoint are
    left out.

    Shape: pred (m, K, 2) pixels; target (m, K, 3) x, y, v; areas (m,); sigmas (K,)."""
    labelled = target[..., 2] > 0
    keep = labelled.any(1)
    if not keep.any():
        return pred.sum() * 0.0
    d2 = ((pred - target[..., :2]) ** 2).sum(-1)
    e = d2 / ((2 * sigmas.to(pred)) ** 2 * 2 * areas.to(pred)[:, None].clamp_min(1.0))
    per_kpt = (1 - torch.exp(-e)) * labelled
    return (per_kpt.sum(1)[keep] / labelled.sum(1)[keep]).mean()


def presence_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Binary cross-entropy of each keypoint's presence logit against "labelled" (v > 0: in the image).

    Shape: logits (m, K); target (m, K, 3)."""
    return F.binary_cross_entropy_with_logits(logits, (target[..., 2] > 0).to(logits.dtype))


__all__ = ["oks_loss", "presence_loss"]
