"""What every generative model shows the task and the latent-space tools."""

from __future__ import annotations

import torch
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
    """

    latent_dim: int
    num_classes: int
    in_chans: int
    img_size: int

    def prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws of z from the prior N(0, I): (n, D) on the model's device."""
        dev = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator).to(dev)

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Pixels in [0, 1], (n, C, H, W), for latent codes z (n, D) and, when conditional, classes y ((n,)
        ids or (n, K) weights)."""
        raise NotImplementedError
