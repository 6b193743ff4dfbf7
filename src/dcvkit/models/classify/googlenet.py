"""GoogLeNet (Szegedy et al., 2014): Inception v1 modules, optional auxiliary classifiers.

An Inception module runs four branches side by side and concatenates them on channels: 1x1; 1x1 -> 3x3;
1x1 -> 5x5; 3x3 max-pool -> 1x1. The 1x1 "reductions" keep the 3x3/5x5 branches cheap. Channel counts
are the paper's Table 1; like torchvision we put batch norm after each convolution (Inception v2's
change, which makes the net trainable without the paper's auxiliary-loss tricks). Unlike torchvision we
keep the paper's 5x5 kernel in the third branch (torchvision's weights use 3x3 there, a known slip, so
its ``googlenet`` state dict does not load into this one).

Auxiliary classifiers (``aux_logits=True``) sit on inception 4a and 4d; in training mode their logits are
left in ``model.aux_outputs`` and the classification task adds 0.3 x their losses, as the paper does.

Data flow on 28x28 (small stem: 3x3/1 convs, no early pools)::

    (B, 1, 28, 28) -conv1, conv2, conv3-> (B, 192, 28, 28) -pool-> 14x14 -3a, 3b-> (B, 480, 14, 14)
    -pool-> 7x7 -4a..4e-> (B, 832, 7, 7) -pool-> 4x4 -5a, 5b-> (B, 1024, 4, 4)  features
    -> global avg pool -> dropout 0.4 -> fc
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from dcvkit.models.classify.base import Classifier, pair, resolve_stem, scaled
from dcvkit.models.registry import register_model

# name: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) -- Table 1 of the paper
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


class BasicConv2d(nn.Module):
    """conv (no bias) -> batch norm -> ReLU."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, out_chans, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_chans, eps=0.001)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Shape: (B, in_chans, H, W) -> (B, c1 + c3 + c5 + pool_proj, H, W)."""

    def __init__(self, in_chans: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int):
        super().__init__()
        self.out_chans = c1 + c3 + c5 + pool_proj
        self.branch1 = BasicConv2d(in_chans, c1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_chans, c3r, 1), BasicConv2d(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_chans, c5r, 1), BasicConv2d(c5r, c5, 5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(in_chans, pool_proj, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: avg-pool to 4x4 -> 1x1 conv 128 -> fc 1024 -> dropout 0.7 -> fc."""

    def __init__(self, in_chans: int, num_classes: int, width: float):
        super().__init__()
        c, hidden = scaled(128, width), scaled(1024, width)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = BasicConv2d(in_chans, c, 1)
        self.fc1 = nn.Linear(c * 16, hidden)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(self.pool(x)).flatten(1)
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


class GoogLeNet(Classifier):
    def __init__(self, *, num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28,
                 dropout: float = 0.4, width: float = 1.0, stem: str = "auto", aux_logits: bool = False):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        self.stem = resolve_stem(stem, self.img_size)
        self.width = width
        c64, c192 = scaled(64, width), scaled(192, width)
        if self.stem == "imagenet":
            self.conv1 = BasicConv2d(in_chans, c64, 7, 2, 3)
            self.maxpool1: nn.Module = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.maxpool2: nn.Module = nn.MaxPool2d(3, 2, ceil_mode=True)
        else:
            self.conv1 = BasicConv2d(in_chans, c64, 3, 1, 1)
            self.maxpool1 = nn.Identity()
            self.maxpool2 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(c64, c64, 1)
        self.conv3 = BasicConv2d(c64, c192, 3, padding=1)
        prev = c192
        for name, spec in INCEPTION.items():
            block = Inception(prev, *[scaled(c, width) for c in spec])
            self.add_module(f"inception{name}", block)
            prev = block.out_chans
            if name == "4a":
                aux1_in = prev
            if name == "4d":
                aux2_in = prev
        k = (3, 2, 1) if self.stem == "imagenet" else (2, 2, 0)
        self.maxpool3, self.maxpool4 = nn.MaxPool2d(*k, ceil_mode=True), nn.MaxPool2d(*k, ceil_mode=True)
        self.aux1 = InceptionAux(aux1_in, num_classes, width) if aux_logits else None
        self.aux2 = InceptionAux(aux2_in, num_classes, width) if aux_logits else None
        self.aux_outputs: list[Tensor] = []
        self.feature_layers = ["conv3", "inception3b", "inception4e", "inception5b"]
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(prev, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, in_chans, H, W) -> (B, 1024, ceil(H/8), ceil(W/8)) (H/32 with the imagenet stem)."""
        self.aux_outputs = []
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        if self.aux1 is not None and self.training:
            self.aux_outputs.append(self.aux1(x))
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        if self.aux2 is not None and self.training:
            self.aux_outputs.append(self.aux2(x))
        x = self.maxpool4(self.inception4e(x))
        return self.inception5b(self.inception5a(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.dropout(self.avgpool(x).flatten(1))
        return x if pre_logits else self.fc(x)

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        for aux in (self.aux1, self.aux2):
            if aux is not None:
                aux.fc2 = nn.Linear(aux.fc2.in_features, num_classes)


@register_model("classify")
def googlenet(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28, dropout: float = 0.4,
              width: float = 1.0, stem: str = "auto", aux_logits: bool = False, **kwargs) -> GoogLeNet:
    """GoogLeNet: 9 Inception v1 modules (paper's Table 1), batch norm, optional auxiliary classifiers (6.0M)."""
    return GoogLeNet(num_classes=num_classes, in_chans=in_chans, img_size=img_size, dropout=dropout, width=width,
                     stem=stem, aux_logits=aux_logits, **kwargs)


__all__ = ["GoogLeNet", "Inception", "InceptionAux", "BasicConv2d", "INCEPTION"]
