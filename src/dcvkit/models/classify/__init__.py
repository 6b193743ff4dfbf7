"""Image classifiers. Each file registers its builders on import."""

from dcvkit.models.classify import cnn  # noqa: F401
from dcvkit.models.classify.base import Classifier
from dcvkit.models.classify.cnn import MLP, PrototypicalCNN

__all__ = ["Classifier", "PrototypicalCNN", "MLP"]
