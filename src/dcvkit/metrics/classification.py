"""Classification metrics on tensors of predictions (B,) or scores (B, K) and targets (B,)."""

from __future__ import annotations

import torch
from torch import Tensor


def accuracy(pred: Tensor, target: Tensor) -> float:
    """Fraction of ``pred == target`` (pred: class ids (B,) or scores (B, K))."""
    if pred.ndim == 2:
        pred = pred.argmax(1)
    return float((pred == target).float().mean()) if len(target) else float("nan")


def accuracy_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of ``correct`` / ``n`` (scipy's ``binomtest``): what a
    test split of ``n`` images can tell (16 images at 0.85: 0.64-0.95)."""
    from scipy.stats import binomtest

    if n <= 0:
        return (0.0, 1.0)
    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


SMALL_SPLIT = 200  # fewer images than this: an accuracy's 95% interval is wider than +-0.07 at 50%


def small_split_note(name: str, n: int, what: str = "an accuracy") -> str | None:
    """A warning for a split too small to choose a checkpoint or report a metric meaningfully (None when it
    is large enough): its size and the 95% interval of ``what`` measured on it, at its widest (50%)."""
    if n >= SMALL_SPLIT:
        return None
    lo, hi = accuracy_interval(n // 2, n)
    return (f"the {name} split has only {n} images: {what} measured on it is uncertain by about "
            f"+-{(hi - lo) / 2:.2f} (95% Wilson interval at 50%: {lo:.2f}-{hi:.2f})")


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
