"""Segmentation and reconstruction losses: Dice, cross-entropy, and both together.

One face for binary and multi-class: ``logits`` (B, K, H, W) with K = 1 means binary (sigmoid; the
target holds 0/1), K > 1 means one class per pixel (softmax; the target holds ids 0..K-1). Pixels whose
target is ``ignore_index`` count nowhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dcvkit.errors import ConfigError

from dcvkit.choices import RECONSTRUCTION_LOSSES
from dcvkit.choices import SEGMENTATION_LOSSES as LOSSES


def _probs_onehot(logits: Tensor, target: Tensor, ignore_index: int | None) -> tuple[Tensor, Tensor, Tensor]:
    """(probabilities (B, K', H, W), one-hot target (B, K', H, W), valid (B, 1, H, W)); K' = 2 for binary
    (background and foreground, so one Dice formula serves both)."""
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    t = torch.where(valid, target, torch.zeros_like(target)).long()
    if logits.shape[1] == 1:
        p1 = logits.float().sigmoid()
        probs = torch.cat([1 - p1, p1], 1)
        onehot = torch.stack([t == 0, t == 1], 1).float()
    else:
        probs = logits.float().softmax(1)
        onehot = F.one_hot(t, logits.shape[1]).permute(0, 3, 1, 2).float()
    v = valid[:, None].float()
    return probs * v, onehot * v, v


def dice_loss(logits: Tensor, target: Tensor, smooth: float = 1.0, ignore_index: int | None = None,
              include_background: bool = False) -> Tensor:
    """Soft Dice loss ``1 - mean_c (2 sum(p_c t_c) + s) / (sum p_c + sum t_c + s)``.

    Sums run over the whole batch (per class), so a class absent from one image does not count as a
    perfect or a failed image; the smooth term ``s`` makes a class absent from both target and
    prediction score 1. Background (class 0) is left out of the mean unless ``include_background``.

    Shape:
        logits: (B, K, H, W); target: (B, H, W) ids (0/1 when K == 1). Returns a scalar.
    """
    probs, onehot, _ = _probs_onehot(logits, target, ignore_index)
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    dice = (2 * inter + smooth) / (denom + smooth)
    return 1 - (dice if include_background else dice[1:]).mean()


def segmentation_loss(name: str, logits: Tensor, target: Tensor, smooth: float = 1.0,
                      ignore_index: int | None = None, dice_weight: float = 1.0) -> Tensor:
    """``ce`` (cross-entropy, or BCE for one channel), ``dice``, or ``ce_dice`` (their sum, Dice weighted)."""
    if name not in LOSSES:
        raise ConfigError(f"unknown segmentation loss '{name}'; choose one of {', '.join(LOSSES)}")
    loss = logits.new_zeros((), dtype=torch.float32)
    if name in ("ce", "ce_dice"):
        if logits.shape[1] == 1:
            valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
            bce = F.binary_cross_entropy_with_logits(logits[:, 0].float(), (target == 1).float(), reduction="none")
            loss = loss + (bce * valid).sum() / valid.sum().clamp_min(1)
        else:
            loss = loss + F.cross_entropy(logits.float(), target.long(),
                                          ignore_index=-100 if ignore_index is None else ignore_index)
    if name in ("dice", "ce_dice"):
        loss = loss + dice_weight * dice_loss(logits, target, smooth, ignore_index)
    return loss


def reconstruction_loss(name: str, logits: Tensor, target: Tensor) -> Tensor:
    """``mse`` of sigmoid(logits) against the target image in [0, 1], or per-pixel ``bce``.

    Shape: logits and target (B, C, H, W)."""
    if name == "mse":
        return F.mse_loss(logits.float().sigmoid(), target.float())
    if name == "bce":
        return F.binary_cross_entropy_with_logits(logits.float(), target.float())
    raise ConfigError(f"unknown reconstruction loss '{name}'; choose one of {', '.join(RECONSTRUCTION_LOSSES)}")


__all__ = ["dice_loss", "segmentation_loss", "reconstruction_loss", "LOSSES", "RECONSTRUCTION_LOSSES"]
