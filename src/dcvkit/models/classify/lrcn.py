"""LRCN (Donahue et al., 2015): a CNN on every frame, an LSTM over time, predictions averaged over time.

Data flow for clips of T frames of 36x36 (encoder widths (32, 64, 128))::

    (B, T, 1, 36, 36) -fold time into batch-> (B*T, 1, 36, 36) -3 conv blocks-> (B*T, 128, 4, 4)
    -avg pool 3x3, flatten, fc+ReLU-> (B*T, 256) -unfold-> (B, T, 256) -LSTM-> (B, T, hidden)  features
    -> mean over T -> dropout -> fc -> (B, num_classes)

The frame features keep a coarse 3x3 spatial grid (as the paper's fc6 features do) so that the LSTM can
see where things are, which is what motion classes need. Averaging the per-step outputs is the paper's
"average the per-frame predictions" (the final linear layer commutes with the mean).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from dcvkit.models.classify.base import Classifier, pair, scaled
from dcvkit.models.classify.cnn import ConvBlock
from dcvkit.models.registry import register_model


class LRCN(Classifier):
    """Input (B, T, C, H, W) clips; ``feature_layers`` are the encoder's per-frame maps (B*T, C', h, w)."""

    input_ndim = 5

    def __init__(self, *, num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 36,
                 widths: Sequence[int] = (32, 64, 128), embed: int = 256, hidden: int = 256,
                 dropout: float = 0.3, grid: int = 3):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        chans = [in_chans, *widths]
        self.encoder = nn.Sequential(*[ConvBlock(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.feature_layers = [f"encoder.{i}" for i in range(len(widths))]
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * grid * grid, embed), nn.ReLU(inplace=True))
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, T, C, H, W) -> (B, T, hidden): LSTM outputs over the per-frame CNN features."""
        if x.ndim != 5:
            raise ValueError(f"lrcn takes clips (B, T, C, H, W), got a tensor of shape {tuple(x.shape)}")
        b, t = x.shape[:2]
        f = self.embed(self.pool(self.encoder(x.flatten(0, 1))))
        out, _ = self.lstm(f.view(b, t, -1))
        return out

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.dropout(x.mean(1))
        return x if pre_logits else self.fc(x)


@register_model("classify")
def lrcn(num_classes: int = 10, in_chans: int = 1, img_size: int | Sequence[int] = 36, dropout: float = 0.3,
         width: float = 1.0, **kwargs) -> LRCN:
    """LRCN: 3 conv blocks per frame (32, 64, 128) -> LSTM 256 over time; input (B, T, C, H, W)."""
    return LRCN(num_classes=num_classes, in_chans=in_chans, img_size=img_size,
                widths=[scaled(c, width) for c in (32, 64, 128)], embed=scaled(256, width), hidden=scaled(256, width),
                dropout=dropout, **kwargs)


__all__ = ["LRCN"]
