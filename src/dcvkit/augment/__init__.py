"""Data augmentation: Keras ``ImageDataGenerator`` semantics and torchvision-style ops, applied to whole
batches (images, masks and boxes together) on any device. See :mod:`dcvkit.augment.pipeline`."""

from dcvkit.augment.config import AugmentConfig, AugmentParams, augment_from_dict, parse_augment, sample_params
from dcvkit.augment.pipeline import Augmented, Augmenter

__all__ = ["AugmentConfig", "AugmentParams", "Augmented", "Augmenter", "augment_from_dict", "parse_augment",
           "sample_params"]
