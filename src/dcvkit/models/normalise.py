"""How pixels become a network's input: one implementation, built from a run's metadata.

A run records its input normalisation in its checkpoint's meta: the data's per-channel ``mean`` and ``std``
(in [0, 1] units) and, when its augmentation standardises (Keras' featurewise / samplewise statistics, ZCA,
torchvision's ``normalize``), the augmentation's fitted state. :class:`Normaliser` is that record as a
module: training, ``predict``, ``dcv export`` (inside the ONNX graph), the explanations, the FID judge and
the server all call it, so the same image is the same model input everywhere (``tests/models/
test_normalise.py`` checks the four paths against each other). torchvision gives this role to a detection
model's ``transform``; here it stays outside the model so the registry's models take normalised tensors.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn


class Normaliser(nn.Module):
    """Pixels (uint8, or float in pixel units 0..255) ``(B, C, H, W)`` -> the network's input.

    Args:
        mean, std: per-channel statistics of the training data in [0, 1] units: ``(x / 255 - mean) / std``.
        standardizer: the run's :class:`~dcvkit.augment.Augmenter`, or None; when its config standardises
            (featurewise or samplewise statistics, ZCA, ``normalize``) its ``standardize`` replaces the
            mean/std step.

    Shape:
        (B, C, H, W) or clips (B, T, C, H, W) -> float of the same shape.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], standardizer: Any = None):
        super().__init__()
        self.stats = ([float(m) for m in mean], [float(s) for s in std])  # as given, for the checkpoint's meta
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]).view(-1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor([float(s) for s in std]).view(-1, 1, 1) * 255, persistent=False)
        self.standardizer = standardizer if standardizer is not None and standardizer.cfg.standardizes else None

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> "Normaliser":
        """The normalisation a run trained with, from its checkpoint's meta (``mean``, ``std``, ``augment``)."""
        standardizer = None
        if "augment" in meta:
            from dcvkit.augment import Augmenter

            standardizer = Augmenter.from_state(meta["augment"])
        return cls(meta["mean"], meta["std"], standardizer)

    @property
    def channels(self) -> int:
        return len(self.mean)

    def forward(self, pixels: Tensor) -> Tensor:
        if self.standardizer is not None:
            return self.standardizer.standardize(pixels)
        if self.mean.device != pixels.device:  # follows the images: the tasks move batches, not the normaliser
            self.to(pixels.device)
        return (pixels.float() - self.mean) / self.std

    def unit(self, x: Tensor) -> Tensor:
        """The same for pixels in [0, 1] (what the explanations differentiate against)."""
        return self(x * 255.0)

    def per_channel(self) -> tuple[Tensor, Tensor] | None:
        """``(scale, shift)`` per channel when the normalisation is ``pixels * scale + shift`` (mean/std,
        featurewise statistics), else None (samplewise statistics, ZCA): a single pixel can then be
        normalised alone, which incremental perturbation saliency needs. Pixel units (0..255)."""
        if self.standardizer is None:
            return 1.0 / self.std.flatten(), -self.mean.flatten() / self.std.flatten()
        return probe_affine(self, self.channels)

    def extra_repr(self) -> str:
        kind = "augmentation's standardize" if self.standardizer is not None else "mean/std"
        return f"channels={self.channels}, {kind}"


def probe_affine(fn: Any, channels: int, device: Any = "cpu", dtype: torch.dtype = torch.float32,
                 atol: float = 1e-5) -> tuple[Tensor, Tensor] | None:
    """``(scale, shift)`` per channel if ``fn(x) == x * scale + shift`` for images ``x`` (B, channels, H, W),
    else None; read off ``fn`` at 0 and 1 and checked on a random image (samplewise statistics and ZCA fail)."""
    with torch.no_grad():
        zero = fn(torch.zeros(1, channels, 4, 4, device=device, dtype=dtype))
        one = fn(torch.ones(1, channels, 4, 4, device=device, dtype=dtype))
        shift, scale = zero[0, :, 0, 0], (one - zero)[0, :, 0, 0]
        x = torch.rand(2, channels, 4, 4, generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)
        if not torch.allclose(fn(x), x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1), atol=atol):
            return None
    return scale, shift


__all__ = ["Normaliser", "probe_affine"]
