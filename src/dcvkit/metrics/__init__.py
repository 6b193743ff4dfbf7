"""Metrics as plain functions on tensors."""

from dcvkit.metrics.classification import accuracy, classification_report, confusion_matrix, topk_accuracy
from dcvkit.metrics.segmentation import confusion, dice_coefficient, scores

__all__ = ["accuracy", "topk_accuracy", "confusion_matrix", "classification_report", "dice_coefficient",
           "confusion", "scores"]
