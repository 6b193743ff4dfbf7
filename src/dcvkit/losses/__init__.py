"""Losses as plain functions on tensors; tasks pick them by name."""

from dcvkit.losses.classification import classification_loss, focal_loss
from dcvkit.losses.generative import discriminator_loss, generator_loss, kl_divergence, kl_weight, negative_elbo
from dcvkit.losses.segmentation import dice_loss, reconstruction_loss, segmentation_loss

__all__ = ["classification_loss", "focal_loss", "dice_loss", "segmentation_loss", "reconstruction_loss",
           "kl_divergence", "negative_elbo", "kl_weight", "discriminator_loss", "generator_loss"]
