"""What every generative model shows the task and the latent-space tools."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcvkit.errors import ConfigError


def stages(img_size: int) -> tuple[int, int]:
    """(number of stride-2 stages, smallest feature size) for a square image: halve while the size is even
    and above 7. 28 -> 14 -> 7 (2 stages), 64 -> 4 (4), 32 -> 4 (3)."""
    if img_size < 8:
        raise ConfigError(f"image size {img_size} is too small for a generative model (at least 8)")
    n, size = 0, img_size
    while size % 2 == 0 and size > 7:
        size //= 2
        n += 1
    if n == 0:
        raise ConfigError(f"image size {img_size} cannot be halved; use an even size such as 28, 32 or 64")
    return n, size


def to_unit(images: Tensor, size: int) -> Tensor:
    """uint8 (B, C, H, W) -> float in [0, 1], resized (bilinear, antialiased) to size x size if needed."""
    x = images.float() / 255
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return x


def to_uint8(x: Tensor) -> Tensor:
    """[0, 1] floats -> uint8 on the CPU."""
    return (x.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def one_hot(y: Tensor | None, num_classes: int, batch: int, device: torch.device) -> Tensor | None:
    """(B,) class ids or (B, K) class weights (a mix such as 0.5/0.5) -> (B, K) float; None when
    unconditional."""
    if num_classes == 0:
        return None
    if y is None:
        raise ConfigError("this model is conditioned on the class: give a class (or a mix of classes)")
    if y.ndim == 2:
        return y.float().to(device)
    return nn.functional.one_hot(y.long().to(device), num_classes).float()


class Generative(nn.Module):
    """The face of every generative model.

    Attributes: ``latent_dim`` (D), ``num_classes`` (K conditioning classes, 0 when unconditional),
    ``in_chans`` (C), ``img_size`` (H = W).

    What the family says about itself (class attributes, read by the generate task before a model is built,
    so a generator registered from outside trains, evaluates and exports with no edit to it):

    * ``trainer``: ``vae`` (``encode``/``decode`` and ``forward(x, y) -> (logits, mu, logvar)``, trained on the
      ELBO) or ``gan`` (``generator`` and ``discriminator`` modules, trained in alternating steps);
    * ``defaults``: the training options ``dcv generate train`` leaves to the family (epochs, lr, monitor).
    """

    latent_dim: int
    num_classes: int
    in_chans: int
    img_size: int
    trainer: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]] = {}
    export_outputs: ClassVar[tuple[str, ...]] = ("images",)

    @property
    def export_inputs(self) -> tuple[str, ...]:
        """``z`` (N, D) and, for a conditional model, ``y`` (N, K) class weights (one-hot, or a mix)."""
        return ("z", "y") if self.num_classes else ("z",)

    def forward_export(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """What ``dcv export`` puts in the graph: latent codes -> pixels 0..255 (float)."""
        return self.generate(z, y) * 255

    def prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws of z from the prior N(0, I): (n, D) on the model's device."""
        dev = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator).to(dev)

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Pixels in [0, 1], (n, C, H, W), for latent codes z (n, D) and, when conditional, classes y ((n,)
        ids or (n, K) weights)."""
        raise NotImplementedError
