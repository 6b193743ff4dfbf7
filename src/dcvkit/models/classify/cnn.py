"""The course's "prototypical CNN": conv-pool blocks, dropout, a dense head; and an MLP baseline.

Data flow (for 28x28 input, widths (32, 64, 128))::

    (B, 1, 28, 28) -block-> (B, 32, 14, 14) -block-> (B, 64, 7, 7) -block-> (B, 128, 3, 3)   features
    -> adaptive avg pool to 3x3 -> flatten (B, 1152) -> dropout -> dense 256 -> ReLU -> dropout -> dense

Each block is conv 3x3 -> batch norm -> ReLU -> max-pool 2x2. The adaptive pool makes the head independent
of the input size (it is the identity at 28x28), so the same network takes 32x32 or 224x224 images.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from dcvkit.models.classify.base import Classifier, leaves, pair, scaled
from dcvkit.models.registry import register_model


class ConvBlock(nn.Sequential):
    """conv 3x3 -> (batch norm) -> ReLU -> max-pool 2x2: halves H and W."""

    def __init__(self, in_chans: int, out_chans: int, batch_norm: bool = True):
        super().__init__(
            nn.Conv2d(in_chans, out_chans, 3, padding=1, bias=not batch_norm),
            nn.BatchNorm2d(out_chans) if batch_norm else nn.Identity(),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )


class PrototypicalCNN(Classifier):
    """Conv-pool blocks followed by a dense head with dropout.

    Args:
        num_classes: output classes.
        in_chans: input channels (1 for Fashion-MNIST, 3 for RGB).
        img_size: the input size the model is meant for (images are resized to it at predict time).
        widths: output channels of each conv block; each block halves the resolution.
        hidden: width of the dense layer.
        dropout: dropout probability before each dense layer.
        batch_norm: batch norm after each convolution.
    """

    def __init__(self, *, num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28,
                 widths: Sequence[int] = (32, 64, 128), hidden: int = 256, dropout: float = 0.3,
                 batch_norm: bool = True, head_grid: int = 3):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        chans = [in_chans, *widths]
        self.blocks = nn.Sequential(*[ConvBlock(a, b, batch_norm) for a, b in zip(chans[:-1], chans[1:])])
        self.feature_layers = [f"blocks.{i}" for i in range(len(widths))]
        self.pool = nn.AdaptiveAvgPool2d(head_grid)
        self.pre_logits = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(widths[-1] * head_grid**2, hidden),
            nn.ReLU(inplace=True), nn.Dropout(dropout),
        )
        self.fc = nn.Linear(hidden, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, in_chans, H, W) -> (B, widths[-1], H / 2**n, W / 2**n)."""
        return self.blocks(x)

    def feature_chain(self) -> list[nn.Module]:
        return leaves(self.blocks)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """(B, C, h, w) feature map -> (B, num_classes) logits, or (B, hidden) with ``pre_logits``."""
        x = self.pre_logits(self.pool(x))
        return x if pre_logits else self.fc(x)


class MLP(Classifier):
    """A multi-layer perceptron on flattened pixels: the deep baseline without convolutions."""

    def __init__(self, *, num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28,
                 hidden: Sequence[int] = (512, 256), dropout: float = 0.2):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        dims = [in_chans * self.img_size[0] * self.img_size[1], *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.feature_layers = [f"body.{3 * i + 2}" for i in range(len(hidden))]
        self.fc = nn.Linear(dims[-1], num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, hidden[-1])."""
        if x.shape[-2:] != self.img_size:
            raise ValueError(f"MLP built for {self.img_size} inputs, got {tuple(x.shape[-2:])}")
        return self.body(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return x if pre_logits else self.fc(x)


@register_model("classify")
def cnn(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28, dropout: float = 0.3,
        width: float = 1.0, **kwargs) -> PrototypicalCNN:
    """Prototypical CNN: 3 conv-pool blocks (32, 64, 128), dense 256, dropout 0.3 (~0.39M params)."""
    return _cnn(num_classes, in_chans, img_size, (32, 64, 128), 256, dropout, width, **kwargs)


@register_model("classify")
def cnn_small(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28,
              dropout: float = 0.3, width: float = 1.0, **kwargs) -> PrototypicalCNN:
    """Prototypical CNN at half width: blocks (16, 32, 64), dense 128."""
    return _cnn(num_classes, in_chans, img_size, (16, 32, 64), 128, dropout, width, **kwargs)


@register_model("classify")
def cnn_tiny(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28,
             dropout: float = 0.1, width: float = 1.0, **kwargs) -> PrototypicalCNN:
    """Two conv-pool blocks (8, 16) and dense 32: for tests and smoke runs."""
    return _cnn(num_classes, in_chans, img_size, (8, 16), 32, dropout, width, **kwargs)


def _cnn(num_classes, in_chans, img_size, widths, hidden, dropout, width, **kwargs) -> PrototypicalCNN:
    return PrototypicalCNN(num_classes=num_classes, in_chans=in_chans, img_size=img_size,
                           widths=[scaled(c, width) for c in widths], hidden=scaled(hidden, width), dropout=dropout,
                           **kwargs)


@register_model("classify")
def mlp(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28,
        dropout: float = 0.2, width: float = 1.0, **kwargs) -> MLP:
    """MLP baseline: flattened pixels -> 512 -> 256 -> classes, ReLU and dropout."""
    return MLP(num_classes=num_classes, in_chans=in_chans, img_size=img_size,
               hidden=(scaled(512, width), scaled(256, width)), dropout=dropout, **kwargs)


@register_model("classify")
def mlp_tiny(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 28,
             dropout: float = 0.0, width: float = 1.0, **kwargs) -> MLP:
    """MLP with one hidden layer of 32 units: for tests."""
    return MLP(num_classes=num_classes, in_chans=in_chans, img_size=img_size, hidden=(scaled(32, width),),
               dropout=dropout, **kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["PrototypicalCNN", "MLP", "ConvBlock", "count_parameters"]
