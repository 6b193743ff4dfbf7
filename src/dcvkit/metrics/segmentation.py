"""Segmentation metrics from one confusion matrix: Dice, IoU (per class and mean), pixel accuracy.

The course's Dice coefficient is ``2 |T ∩ P| / (|T| + |P|)``; per class, with TP/FP/FN counted over
every pixel of a set of images, it is ``2 TP / (2 TP + FP + FN)`` (the F1 score of that class's pixels),
and IoU is ``TP / (TP + FP + FN)``. Counting over the whole set (not averaging per image) is what
smp's ``reduction="micro"`` per class and torchmetrics' ``average=None`` do; a class absent from both
truth and prediction has no score (NaN) and is left out of the means.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor


def dice_coefficient(pred: Tensor, target: Tensor) -> float:
    """The course's formula for two binary masks: ``2 |T ∩ P| / (|T| + |P|)`` (1.0 when both are empty)."""
    p, t = pred.bool(), target.bool()
    denom = int(p.sum()) + int(t.sum())
    return 1.0 if denom == 0 else 2 * int((p & t).sum()) / denom


def confusion(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """(K, K) int64 counts, rows = truth, columns = prediction, over all pixels (``ignore_index`` left out).

    Shape: pred and target of the same shape (B, H, W), integer ids."""
    p, t = pred.flatten().long(), target.flatten().long()
    keep = (t >= 0) & (t < num_classes)
    if ignore_index is not None:
        keep &= t != ignore_index
    p, t = p[keep].clamp(0, num_classes - 1), t[keep]
    return torch.bincount(t * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes).cpu()


def scores(cm: Tensor, classes: Sequence[str] | None = None, background: int | None = 0) -> dict:
    """Per-class Dice and IoU, their means over the foreground classes (all classes but ``background``),
    and pixel accuracy, from a confusion matrix."""
    cm = cm.double()
    tp = cm.diag()
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    denom = tp + fp + fn
    dice = torch.where(denom > 0, 2 * tp / (2 * tp + fp + fn).clamp_min(1), torch.full_like(tp, math.nan))
    iou = torch.where(denom > 0, tp / denom.clamp_min(1), torch.full_like(tp, math.nan))
    k = len(tp)
    names = list(classes) if classes is not None else [str(i) for i in range(k)]
    fg = [i for i in range(k) if i != background]
    per_class = [{"class": names[i], "dice": _num(dice[i]), "iou": _num(iou[i]), "pixels": int(cm[i].sum())}
                 for i in range(k)]
    return {"mean_dice": _nanmean(dice[fg]), "mean_iou": _nanmean(iou[fg]),
            "pixel_accuracy": float(tp.sum() / cm.sum().clamp_min(1)), "per_class": per_class}


def _num(x: Tensor) -> float | None:
    v = float(x)
    return None if math.isnan(v) else v


def _nanmean(x: Tensor) -> float:
    x = x[~x.isnan()]
    return float(x.mean()) if len(x) else math.nan


__all__ = ["dice_coefficient", "confusion", "scores"]
