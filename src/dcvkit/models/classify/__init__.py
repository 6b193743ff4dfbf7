"""Image classifiers. Each file registers its builders on import; all share the :class:`Classifier` face."""

from dcvkit.models.classify import alexnet, cnn, googlenet, lrcn, resnet, vgg  # noqa: F401
from dcvkit.models.classify.alexnet import AlexNet
from dcvkit.models.classify.base import Classifier
from dcvkit.models.classify.cnn import MLP, PrototypicalCNN
from dcvkit.models.classify.googlenet import GoogLeNet
from dcvkit.models.classify.lrcn import LRCN
from dcvkit.models.classify.resnet import ResNet
from dcvkit.models.classify.vgg import VGG

__all__ = ["Classifier", "PrototypicalCNN", "MLP", "AlexNet", "VGG", "GoogLeNet", "ResNet", "LRCN"]
