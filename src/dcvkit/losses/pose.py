"""Pose losses: the OKS loss (YOLO-pose's: one minus each labelled keypoint's OKS term, so the loss is the
metric's own error, scaled by the object's size and the keypoint's sigma), the keypoint-presence loss and
the heatmap loss of the top-down model."""

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


def scaled_l1_loss(pred: Tensor, target: Tensor, areas: Tensor) -> Tensor:
    """Mean over the labelled keypoints of their L1 error over the object's scale ``sqrt(area)``: a gradient
    of the same size however far a keypoint is, where the OKS loss's vanishes (a keypoint several sigmas
    away sits on the flat tail of its exponential).

    Shape: pred (m, K, 2) pixels; target (m, K, 3); areas (m,)."""
    labelled = (target[..., 2] > 0).to(pred.dtype)
    if not labelled.any():
        return pred.sum() * 0.0
    err = (pred - target[..., :2]).abs().sum(-1) / areas.to(pred)[:, None].clamp_min(1.0).sqrt()
    return (err * labelled).sum() / labelled.sum()


def presence_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Binary cross-entropy of each keypoint's presence logit against "labelled" (v > 0: in the image).

    Shape: logits (m, K); target (m, K, 3)."""
    return F.binary_cross_entropy_with_logits(logits, (target[..., 2] > 0).to(logits.dtype))


def heatmap_loss(logits: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """KL divergence of each heatmap's softmax (over its pixels) from its target normalised to sum to 1,
    averaged with ``weight`` (0 for keypoints without a target); 0 when every map is its target.

    Shape: logits, target (n, K, H, W); weight (n, K)."""
    logp = logits.float().flatten(2).log_softmax(-1)
    t = target.flatten(2).to(logp)
    t = t / t.sum(-1, keepdim=True).clamp_min(1e-12)
    per = (t * (t.clamp_min(1e-12).log() - logp)).sum(-1) * weight
    return per.sum() / weight.sum().clamp_min(1.0)


__all__ = ["oks_loss", "scaled_l1_loss", "presence_loss", "heatmap_loss"]
