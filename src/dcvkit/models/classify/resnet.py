"""ResNet (He et al., 2015) and its plain twins without shortcuts, for the degradation experiment.

One class covers both of the paper's families:

* ImageNet-style ``resnet18``/``resnet34``: stem (7x7/2 conv + 3x3/2 max-pool, or a 3x3/1 conv for small
  inputs), four stages of basic blocks with (64, 128, 256, 512) channels, projection shortcuts (option B).
  Parameter names match torchvision's, so a torchvision ``resnet18`` state dict loads directly.
* CIFAR-style ``resnet20``/``32``/``44``/``56``/``110`` (depth 6n+2): a 3x3 conv with 16 channels, three
  stages of n blocks with (16, 32, 64) channels, identity shortcuts that subsample and zero-pad channels
  (option A, no extra parameters, so ``plainN`` and ``resnetN`` have exactly the same weights).

Data flow of resnet20 on 28x28 (small stem)::

    (B, 1, 28, 28) -conv1/bn1/relu-> (B, 16, 28, 28) -layer1-> (B, 16, 28, 28) -layer2-> (B, 32, 14, 14)
    -layer3-> (B, 64, 7, 7)  features -> global avg pool (B, 64) -> fc (B, num_classes)

``plainN`` is ``resnetN`` with every shortcut removed: y = relu(bn(conv(relu(bn(conv(x)))))).
"""

from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from dcvkit.models.classify.base import Classifier, pair, resolve_stem, scaled
from dcvkit.models.registry import register_model


class PadShortcut(nn.Module):
    """Option-A shortcut: subsample by ``stride`` and zero-pad the new channels (no parameters)."""

    def __init__(self, in_chans: int, out_chans: int, stride: int):
        super().__init__()
        self.stride, self.pad = stride, out_chans - in_chans

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers; ``residual`` adds the shortcut before the last ReLU (a plain block if not).

    Shape: (B, in_chans, H, W) -> (B, out_chans, H / stride, W / stride).
    """

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1, residual: bool = True,
                 shortcut: str = "B"):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(in_chans, out_chans, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chans)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_chans, out_chans, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chans)
        self.downsample: nn.Module | None = None
        if residual and (stride != 1 or in_chans != out_chans):
            self.downsample = (PadShortcut(in_chans, out_chans, stride) if shortcut == "A" else
                               nn.Sequential(nn.Conv2d(in_chans, out_chans, 1, stride, bias=False),
                                             nn.BatchNorm2d(out_chans)))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class ResNet(Classifier):
    """Stem, stages of :class:`BasicBlock` (the first block of stages 2+ halves H and W), avg-pool, fc.

    Args:
        layers: blocks per stage, e.g. (2, 2, 2, 2) for resnet18, (3, 3, 3) for resnet20.
        widths: channels per stage (before the ``width`` multiplier).
        residual: False builds the plain network of the same depth.
        shortcut: "A" (zero-pad identity, CIFAR nets) or "B" (1x1 projection, ImageNet nets).
        stem: "auto" (small under 64 px), "small" (3x3/1 conv) or "imagenet" (7x7/2 conv + max-pool).
    """

    def __init__(self, layers: Sequence[int], widths: Sequence[int], *, num_classes: int = 10, in_chans: int = 1,
                 img_size: int | Sequence[int] = 28, width: float = 1.0, residual: bool = True,
                 shortcut: str = "B", stem: str = "auto", dropout: float = 0.0):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        self.stem = resolve_stem(stem, self.img_size)
        chans = [scaled(c, width) for c in widths]
        if self.stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, chans[0], 7, 2, 3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_chans, chans[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(chans[0])
        self.relu = nn.ReLU(inplace=True)
        prev = chans[0]
        for i, (n, c) in enumerate(zip(layers, chans), 1):
            blocks = [BasicBlock(prev if j == 0 else c, c, 2 if (j == 0 and i > 1) else 1, residual, shortcut)
                      for j in range(n)]
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
            prev = c
        self.feature_layers = [f"layer{i}" for i in range(1, len(layers) + 1)]
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(prev, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, in_chans, H, W) -> (B, C_last, H / s, W / s), s = 2**(stages-1) (x4 more for the imagenet stem)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.feature_layers:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.dropout(self.avgpool(x).flatten(1))
        return x if pre_logits else self.fc(x)


def _resnet(layers, widths, shortcut, residual, num_classes, in_chans, img_size, dropout, width, stem, **kw):
    return ResNet(layers, widths, num_classes=num_classes, in_chans=in_chans, img_size=img_size, width=width,
                  residual=residual, shortcut=shortcut, stem=stem, dropout=dropout, **kw)


_IMAGENET = (64, 128, 256, 512)
_CIFAR = (16, 32, 64)


@register_model("classify")
def resnet18(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28, dropout: float = 0.0,
             width: float = 1.0, stem: str = "auto", **kwargs) -> ResNet:
    """ResNet-18: 4 stages x 2 basic blocks (64-512 ch), projection shortcuts; torchvision-compatible (11.2M)."""
    return _resnet((2, 2, 2, 2), _IMAGENET, "B", True, num_classes, in_chans, img_size, dropout, width, stem, **kwargs)


@register_model("classify")
def resnet34(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28, dropout: float = 0.0,
             width: float = 1.0, stem: str = "auto", **kwargs) -> ResNet:
    """ResNet-34: stages of (3, 4, 6, 3) basic blocks (64-512 ch); torchvision-compatible (21.3M)."""
    return _resnet((3, 4, 6, 3), _IMAGENET, "B", True, num_classes, in_chans, img_size, dropout, width, stem, **kwargs)


def _register_cifar(depth: int, residual: bool) -> None:
    n = (depth - 2) // 6
    kind = "resnet" if residual else "plain"

    def builder(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28,
                dropout: float = 0.0, width: float = 1.0, stem: str = "auto", **kwargs) -> ResNet:
        return _resnet((n, n, n), _CIFAR, "A", residual, num_classes, in_chans, img_size, dropout, width, stem,
                       **kwargs)

    builder.__name__ = builder.__qualname__ = f"{kind}{depth}"
    shortcut = "identity shortcuts (option A)" if residual else "no shortcuts (the degradation baseline)"
    builder.__doc__ = f"CIFAR-style {kind.capitalize()}-{depth}: 3 stages x {n} basic blocks (16, 32, 64 ch), {shortcut}."
    register_model("classify")(builder)
    globals()[builder.__name__] = builder


for _depth in (20, 32, 44, 56, 110):
    _register_cifar(_depth, residual=True)
    _register_cifar(_depth, residual=False)

__all__ = ["ResNet", "BasicBlock", "PadShortcut"]
