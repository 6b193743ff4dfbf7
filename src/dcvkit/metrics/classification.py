"""Classification metrics on tensors of predictions (B,) or scores (B, K) and targets (B,)."""

from __future__ import annotations

import torch
from torch import Tensor


def accuracy(pred: Tensor, target: Tensor) -> float:
    """Fraction of ``pred == target`` (pred: class ids (B,) or scores (B, K))."""
    if pred.ndim == 2:
        pred = pred.argmax(1)
    return float((pred == target).float().mean()) if len(target) else float("nan")


def topk_accuracy(scores: Tensor, target: Tensor, k: int = 5) -> float:
    """Fraction of targets among the ``k`` highest scores (B, K)."""
    k = min(k, scores.shape[1])
    return float((scores.topk(k, dim=1).indices == target[:, None]).any(1).float().mean())


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """(K, K) int64 counts; row = true class, column = predicted class (scikit-learn's convention)."""
    if pred.ndim == 2:
        pred = pred.argmax(1)
    idx = target.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def classification_report(cm: Tensor, classes: list[str]) -> list[dict[str, float | str]]:
    """Per-class precision, recall, F1 and support from a confusion matrix."""
    cm = cm.double()
    tp = cm.diag()
    precision = tp / cm.sum(0).clamp_min(1)
    recall = tp / cm.sum(1).clamp_min(1)
    f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
    return [{"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, cm.sum(1))]
