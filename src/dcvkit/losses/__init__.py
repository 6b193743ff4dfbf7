"""Losses as plain functions on tensors; tasks pick them by name."""

from dcvkit.losses.classification import classification_loss, focal_loss

__all__ = ["classification_loss", "focal_loss"]
