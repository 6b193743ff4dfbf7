"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), single-tower as in torchvision.

Five convolutions (11x11/4, 5x5, 3x3, 3x3, 3x3; 64-192-384-256-256 channels), ReLU, overlapping 3x3/2
max-pooling, then three dense layers (4096, 4096, classes) with dropout 0.5. Like torchvision we drop the
paper's local response normalisation (later work found it does not help) and its two-GPU split; parameter
names match torchvision's ``alexnet``, so its state dict loads directly (imagenet stem).

The small stem (inputs under 64 px) replaces the 11x11/4 conv by a 3x3/1 conv and the 3x3/2 pools by
2x2/2 pools, and uses 1024-unit dense layers on a 3x3 grid::

    (B, 1, 28, 28) -conv 3x3, pool-> (B, 64, 14, 14) -conv 5x5, pool-> (B, 192, 7, 7)
    -3 convs, pool-> (B, 256, 3, 3)  features -> flatten 2304 -> 1024 -> 1024 -> num_classes
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from dcvkit.models.classify.base import FeaturesClassifier, pair, resolve_stem, scaled
from dcvkit.models.registry import register_model


class AlexNet(FeaturesClassifier):
    def __init__(self, *, num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28,
                 dropout: float = 0.5, width: float = 1.0, stem: str = "auto"):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        self.stem = resolve_stem(stem, self.img_size)
        c = [scaled(k, width) for k in (64, 192, 384, 256, 256)]
        big = self.stem == "imagenet"
        pool = (lambda: nn.MaxPool2d(3, 2)) if big else (lambda: nn.MaxPool2d(2))
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, c[0], 11, 4, 2) if big else nn.Conv2d(in_chans, c[0], 3, 1, 1),
            nn.ReLU(inplace=True), pool(),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(inplace=True), pool(),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True), pool(),
        )
        self.feature_layers = ["features.2", "features.5", "features.12"]
        grid, hidden = (6, 4096) if big else (3, 1024)
        hidden = scaled(hidden, width)
        self.avgpool = nn.AdaptiveAvgPool2d(grid)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c[4] * grid * grid, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )


@register_model("classify")
def alexnet(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28, dropout: float = 0.5,
            width: float = 1.0, stem: str = "auto", **kwargs) -> AlexNet:
    """AlexNet: 5 convs (64-256 ch), 3 dense layers with dropout 0.5; torchvision-compatible (61M at 224 px)."""
    return AlexNet(num_classes=num_classes, in_chans=in_chans, img_size=img_size, dropout=dropout, width=width,
                   stem=stem, **kwargs)


__all__ = ["AlexNet"]
