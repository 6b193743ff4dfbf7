"""``smp_unet``: segmentation_models_pytorch's U-Net, registered so that ``dcv bench segment`` trains and
evaluates it through exactly the same task, data and metrics as dcvkit's own models.

smp is a benchmark-only dependency (``pip install dcvkit[bench]``); the builder says so when it is
missing. Weights are never downloaded: the encoder starts from random initialisation (``encoder_weights=None``).
"""

from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from dcvkit.errors import ConfigError
from dcvkit.models.registry import register_model


class SMPUnet(nn.Module):
    """smp.Unet with dcvkit's face: ``num_classes``/``in_chans`` attributes and any input size (zero-padded
    to a multiple of 32, the encoder's stride, and cropped back)."""

    def __init__(self, *, num_classes: int, in_chans: int, encoder: str, decoder_channels: Sequence[int] | None):
        super().__init__()
        try:
            import segmentation_models_pytorch as smp
        except ImportError:
            raise ConfigError("smp_unet needs segmentation-models-pytorch: pip install 'dcvkit[bench]'") from None
        kw = {"decoder_channels": tuple(decoder_channels)} if decoder_channels else {}
        self.net = smp.Unet(encoder_name=encoder, encoder_weights=None, in_channels=in_chans, classes=num_classes,
                            **kw)
        self.num_classes, self.in_chans = num_classes, in_chans

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 32, (-w) % 32
        y = self.net(F.pad(x, (0, pw, 0, ph)) if ph or pw else x)
        return y[..., :h, :w]


@register_model("segment")
def smp_unet(num_classes: int = 2, in_chans: int = 3, img_size: int | Sequence[int] = 128, encoder: str = "resnet18",
             decoder_channels: Sequence[int] | None = None, **kwargs) -> SMPUnet:
    """segmentation_models_pytorch.Unet (random init, resnet18 encoder by default); bench-only dependency."""
    return SMPUnet(num_classes=num_classes, in_chans=in_chans, encoder=encoder or "resnet18",
                   decoder_channels=decoder_channels)


__all__ = ["SMPUnet", "smp_unet"]
