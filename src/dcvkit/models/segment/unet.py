"""U-Net and the convolutional autoencoder: one encoder-decoder, with or without skip connections.

The course's U-Net is built from *sections* (two 3x3 convolutions): ``section(16,16) -> pool ->
section(32,32) -> pool -> section(32,64)`` at the bottom, then ``upsample -> concat -> section(32,32) ->
upsample -> concat -> section(16,16)`` and a 1x1 convolution. :class:`EncoderDecoder` is that design
generalised: an encoder returns feature maps shallow to deep, a :class:`Decoder` walks back up, merging
each level's encoder map (``skips=True``: U-Net) or not (``skips=False``: the convolutional autoencoder,
the same network minus its skips, so a comparison between the two measures exactly the skips).

Shape:
    input (B, in_chans, H, W) float, any H and W (padded to a multiple of the encoder's stride inside,
    cropped back); output (B, num_classes, H, W) logits (sigmoid for 1 channel or a reconstruction,
    softmax over classes otherwise).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcvkit.choices import UPSAMPLING
from dcvkit.errors import ConfigError
from dcvkit.models.registry import register_model

UPSAMPLE = UPSAMPLING


def section(in_chans: int, c1: int, c2: int, batch_norm: bool = True) -> nn.Sequential:
    """The course's ``section(c1, c2)``: conv3x3(c1) -> ReLU -> conv3x3(c2) -> ReLU ('same' padding),
    with batch norm after each conv when asked."""
    layers: list[nn.Module] = []
    for cin, cout in ((in_chans, c1), (c1, c2)):
        layers.append(nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SectionEncoder(nn.Module):
    """``sections[0]`` at full resolution, each later section after a 2x2 max-pool.

    Returns every section's output, shallow to deep: strides 1, 2, 4, ...
    """

    def __init__(self, in_chans: int, sections: Sequence[tuple[int, int]], batch_norm: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList()
        prev = in_chans
        for c1, c2 in sections:
            self.blocks.append(section(prev, c1, c2, batch_norm))
            prev = c2
        self.channels = [c2 for _, c2 in sections]
        self.strides = [2 ** i for i in range(len(sections))]

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            feats.append(x)
        return feats


class ClassifierEncoder(nn.Module):
    """A ResNet of the classification registry as encoder: its stem and each stage's output.

    The classifier's pooling and linear head are dropped. Strides are (2, 4, 8, 16, 32) with the ImageNet
    stem (used from 64 px up), (1, 1, 2, 4, 8) with the small stem.
    """

    def __init__(self, name: str, in_chans: int, img_size: int | Sequence[int], width: float = 1.0):
        super().__init__()
        from dcvkit.models.classify.resnet import ResNet
        from dcvkit.models.registry import create_model

        net = create_model(name, num_classes=1, in_chans=in_chans, img_size=img_size, width=width)
        if not isinstance(net, ResNet):
            raise ConfigError(f"--encoder {name}: U-Net encoders come from the ResNet family of the registry "
                              "(resnet18, resnet34, resnet20, ...); see `dcv models`")
        net.fc = nn.Identity()  # type: ignore[assignment]
        net.avgpool = nn.Identity()  # type: ignore[assignment]
        self.net = net
        with torch.no_grad():
            probe = torch.zeros(1, in_chans, 64, 64)
            feats = self.forward(probe)
        self.channels = [f.shape[1] for f in feats]
        self.strides = [64 // f.shape[-1] for f in feats]

    def forward(self, x: Tensor) -> list[Tensor]:
        n = self.net
        x = n.relu(n.bn1(n.conv1(x)))
        feats = [x]
        x = n.maxpool(x)
        for name in n.feature_layers:
            x = getattr(n, name)(x)
            feats.append(x)
        return feats


class Decoder(nn.Module):
    """From the deepest feature map back to full resolution, one section per level.

    Level ``i`` (deep to shallow): upsample to level i's size (nearest, bilinear, or a learned 2x2
    transposed convolution), concatenate level i's encoder map (when ``skips``), then
    ``section(channels[i], channels[i])``. Levels with ``skip_channels[i] == 0`` have no encoder map (e.g.
    full resolution under a strided stem).
    """

    def __init__(self, skip_channels: Sequence[int], channels: Sequence[int], *, bottom: int, upsample: str,
                 batch_norm: bool, skips: bool):
        super().__init__()
        if upsample not in UPSAMPLE:
            raise ConfigError(f"--upsample must be one of {', '.join(UPSAMPLE)}; got {upsample!r}")
        self.upsample, self.skips = upsample, skips
        self.ups = nn.ModuleList()
        self.blocks = nn.ModuleList()
        prev = bottom
        for skip, c in zip(reversed(skip_channels), reversed(channels)):
            self.ups.append(nn.ConvTranspose2d(prev, prev, 2, stride=2) if upsample == "transpose" else nn.Identity())
            self.blocks.append(section(prev + (skip if skips else 0), c, c, batch_norm))
            prev = c
        self.out_channels = prev

    def forward(self, bottom: Tensor, skips: Sequence[Tensor | None], sizes: Sequence[tuple[int, int]]) -> Tensor:
        x = bottom
        for up, block, skip, size in zip(self.ups, self.blocks, reversed(skips), reversed(sizes)):
            if self.upsample == "transpose":
                x = up(x)
                if tuple(x.shape[-2:]) != tuple(size):  # a stride-1 stage of a resnet encoder
                    x = F.interpolate(x, size=size, mode="nearest")
            elif tuple(x.shape[-2:]) != tuple(size):
                x = F.interpolate(x, size=size, mode=self.upsample,
                                  **({"align_corners": False} if self.upsample == "bilinear" else {}))
            if self.skips and skip is not None:
                x = torch.cat([x, skip], 1)
            x = block(x)
        return x


class EncoderDecoder(nn.Module):
    """An encoder (feature maps shallow to deep), a :class:`Decoder`, a 1x1 convolution to ``num_classes``.

    ``skips=True`` is a U-Net; ``skips=False`` the convolutional autoencoder (information must pass the
    bottleneck). Inputs of any size are zero-padded to a multiple of the deepest stride, outputs cropped.
    """

    def __init__(self, encoder: nn.Module, decoder_channels: Sequence[int], *, num_classes: int, in_chans: int,
                 upsample: str = "bilinear", batch_norm: bool = True, skips: bool = True, dropout: float = 0.0):
        super().__init__()
        self.num_classes, self.in_chans, self.skips = num_classes, in_chans, skips
        self.encoder = encoder
        strides, chans = list(encoder.strides), list(encoder.channels)
        # Decoder levels: every encoder level but the deepest, plus full resolution when the encoder's
        # first map is already strided (a ResNet's 7x7/2 stem).
        self.levels = list(strides[:-1])
        skip_ch = chans[:-1]
        if strides[0] > 1:
            self.levels, skip_ch = [1] + self.levels, [0] + skip_ch
        if len(decoder_channels) != len(self.levels):
            raise ConfigError(f"decoder needs {len(self.levels)} widths, got {len(decoder_channels)}")
        self.multiple = strides[-1]
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.decoder = Decoder(skip_ch, decoder_channels, bottom=chans[-1], upsample=upsample, batch_norm=batch_norm,
                               skips=skips)
        self.head = nn.Conv2d(self.decoder.out_channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        feats = self.encoder(x)
        hp, wp = x.shape[-2:]
        by_stride = {s: f for s, f in zip(self.encoder.strides, feats)}  # a stride's deepest map (resnet layer1)
        skips = [by_stride.get(s) for s in self.levels]
        sizes = [(-(-hp // s), -(-wp // s)) for s in self.levels]
        y = self.decoder(self.dropout(feats[-1]), skips, sizes)
        y = self.head(y)
        return y[..., :h, :w] if (ph or pw) else y


def _widths(base: int, depth: int) -> list[int]:
    return [base * 2 ** i for i in range(depth + 1)]


def _build(num_classes: int, in_chans: int, img_size: int | Sequence[int], depth: int, base: int,
           upsample: str, batch_norm: bool, dropout: float, encoder: str | None, skips: bool,
           width: float = 1.0) -> EncoderDecoder:
    if depth < 1:
        raise ConfigError(f"--depth must be at least 1, got {depth}")
    if encoder:
        enc: nn.Module = ClassifierEncoder(encoder, in_chans, img_size, width)
        dec = [max(base, c // 2) for c in ([base] if enc.strides[0] > 1 else []) + list(enc.channels[:-1])]
    else:
        w = _widths(base, depth)
        enc = SectionEncoder(in_chans, [(c, c) for c in w], batch_norm)
        dec = w[:-1]
    return EncoderDecoder(enc, dec, num_classes=num_classes, in_chans=in_chans, upsample=upsample,
                          batch_norm=batch_norm, skips=skips, dropout=dropout)


@register_model("segment")
def unet(num_classes: int = 2, in_chans: int = 3, img_size: int | Sequence[int] = 128, depth: int = 4,
         base: int = 8, upsample: str = "bilinear", batch_norm: bool = True, dropout: float = 0.0,
         encoder: str | None = None, width: float = 1.0, **kwargs) -> EncoderDecoder:
    """U-Net: depth+1 sections (base, 2*base, ... channels), max-pools down, upsample+concat+section up."""
    return _build(num_classes, in_chans, img_size, depth, base, upsample, batch_norm, dropout, encoder, True, width)


@register_model("segment")
def conv_autoencoder(num_classes: int = 2, in_chans: int = 3, img_size: int | Sequence[int] = 128, depth: int = 4,
                     base: int = 8, upsample: str = "bilinear", batch_norm: bool = True, dropout: float = 0.0,
                     encoder: str | None = None, width: float = 1.0, **kwargs) -> EncoderDecoder:
    """Convolutional autoencoder: the U-Net without skips (reconstruction, or a skip-less segmenter)."""
    return _build(num_classes, in_chans, img_size, depth, base, upsample, batch_norm, dropout, encoder, False, width)


@register_model("segment")
def unet_course(num_classes: int = 1, in_chans: int = 3, img_size: int | Sequence[int] = 128,
                **kwargs) -> EncoderDecoder:
    """The course's small U-Net exactly: sections (16,16) (32,32) | (32,64) | (32,32) (16,16), nearest 2x."""
    enc = SectionEncoder(in_chans, [(16, 16), (32, 32), (32, 64)], batch_norm=False)
    return EncoderDecoder(enc, [16, 32], num_classes=num_classes, in_chans=in_chans, upsample="nearest",
                          batch_norm=False)


__all__ = ["EncoderDecoder", "SectionEncoder", "ClassifierEncoder", "Decoder", "section", "unet",
           "conv_autoencoder", "unet_course"]
