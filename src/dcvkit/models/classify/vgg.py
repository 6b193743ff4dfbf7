"""VGGNet (Simonyan & Zisserman, 2014): stacks of 3x3 convolutions between 2x2 max-pools.

Configurations A (``vgg11``) and D (``vgg16``) of the paper, 64-128-256-512-512 channels, and the
three-layer dense head (4096, 4096, classes) with dropout 0.5. We add batch norm after each convolution by
default (``batch_norm=False`` gives the paper's network, which needs the paper's staged initialisation
to train at depth 16); parameter names match torchvision's ``vgg11_bn``/``vgg16_bn`` (or ``vgg11``/``vgg16``
without batch norm), so their state dicts load directly (imagenet stem).

For small inputs (under 64 px) the pools round up (28 -> 14 -> 7 -> 4 -> 2 -> 1) and the head is
512-512-classes on the 1x1 map, the usual CIFAR adaptation::

    (B, 1, 28, 28) -block 1-> (B, 64, 14, 14) -> ... -block 5-> (B, 512, 1, 1)  features
    -> flatten 512 -> 512 -> 512 -> num_classes
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from dcvkit.models.classify.base import FeaturesClassifier, pair, resolve_stem, scaled
from dcvkit.models.registry import register_model

CONFIGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


class VGG(FeaturesClassifier):
    def __init__(self, config: Sequence[int | str], *, num_classes: int = 10, in_chans: int = 1,
                 img_size: int | Sequence[int] = 28, dropout: float = 0.5, width: float = 1.0,
                 stem: str = "auto", batch_norm: bool = True):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        self.stem = resolve_stem(stem, self.img_size)
        big = self.stem == "imagenet"
        layers: list[nn.Module] = []
        self.feature_layers = []
        prev = in_chans
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=not big))
                self.feature_layers.append(f"features.{len(layers) - 1}")
                continue
            c = scaled(int(v), width)
            layers.append(nn.Conv2d(prev, c, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.ReLU(inplace=True))
            prev = c
        self.features = nn.Sequential(*layers)
        grid, hidden = (7, 4096) if big else (1, 512)
        hidden = scaled(hidden, width)
        self.avgpool = nn.AdaptiveAvgPool2d(grid)
        self.classifier = nn.Sequential(
            nn.Linear(prev * grid * grid, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)


@register_model("classify")
def vgg11(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28, dropout: float = 0.5,
          width: float = 1.0, stem: str = "auto", batch_norm: bool = True, **kwargs) -> VGG:
    """VGG-11 (config A): 8 convs 3x3 + 3 dense, batch norm; torchvision vgg11_bn-compatible."""
    return VGG(CONFIGS["vgg11"], num_classes=num_classes, in_chans=in_chans, img_size=img_size, dropout=dropout,
               width=width, stem=stem, batch_norm=batch_norm, **kwargs)


@register_model("classify")
def vgg16(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28, dropout: float = 0.5,
          width: float = 1.0, stem: str = "auto", batch_norm: bool = True, **kwargs) -> VGG:
    """VGG-16 (config D): 13 convs 3x3 + 3 dense, batch norm; torchvision vgg16_bn-compatible."""
    return VGG(CONFIGS["vgg16"], num_classes=num_classes, in_chans=in_chans, img_size=img_size, dropout=dropout,
               width=width, stem=stem, batch_norm=batch_norm, **kwargs)


__all__ = ["VGG", "CONFIGS"]
