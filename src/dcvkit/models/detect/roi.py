"""Regions of a feature map (or of the image) as fixed-size grids.

* :class:`RoIPool` - Fast R-CNN's RoI pooling (torchvision ``roi_pool``: each of the ``k x k`` bins takes the
  max of its cells) or, as an option, Mask R-CNN's RoI Align (``roi_align``: bilinear samples, no rounding).
* :func:`warp_crops` - R-CNN's "warp each proposal to the CNN's input size", done for every box of a batch
  in one ``roi_align`` call instead of one resize per crop.

Boxes come as ``x1, y1, x2, y2`` pixel edges of the input image, one (n_i, 4) tensor per image.
``roi_pool`` works in the original Caffe convention (inclusive pixel indices, rounded to cells), so boxes
are passed to it as ``x1, y1, x2 - 1, y2 - 1``; ``roi_align(aligned=True)`` takes pixel edges as they are.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align, roi_pool

KINDS = ("pool", "align")


def _inclusive(boxes: Sequence[Tensor]) -> list[Tensor]:
    return [b - b.new_tensor([0.0, 0.0, 1.0, 1.0]) for b in boxes]


class RoIPool(nn.Module):
    """(B, C, H, W) features + per-image boxes (image pixels) -> (K, C, k, k), K = all boxes in order.

    Args:
        output_size: ``k`` (or ``(kh, kw)``), the grid each region becomes.
        spatial_scale: feature-map cells per image pixel (1 / the backbone's stride).
        kind: ``pool`` (max over each bin, Fast R-CNN) or ``align`` (bilinear, 2x2 samples per bin).
    """

    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float, kind: str = "pool"):
        super().__init__()
        if kind not in KINDS:
            from dcvkit.errors import ConfigError

            raise ConfigError(f"unknown RoI op '{kind}'; choose pool or align")
        self.output_size, self.spatial_scale, self.kind = output_size, float(spatial_scale), kind

    def forward(self, features: Tensor, boxes: Sequence[Tensor]) -> Tensor:
        boxes = [b.to(features.dtype) for b in boxes]
        if self.kind == "pool":
            return roi_pool(features, _inclusive(boxes), self.output_size, self.spatial_scale)
        return roi_align(features, boxes, self.output_size, self.spatial_scale, sampling_ratio=2, aligned=True)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, output_size={self.output_size}, spatial_scale={self.spatial_scale:g}"


def warp_crops(images: Tensor, boxes: Sequence[Tensor], size: int) -> Tensor:
    """Every box of every image resampled to ``size x size`` (bilinear): (B, C, H, W) -> (K, C, size, size)."""
    return roi_align(images, [b.to(images.dtype) for b in boxes], (size, size), 1.0, sampling_ratio=2,
                     aligned=True)


def _probe(backbone: nn.Module, in_chans: int, probe: int, layers: Sequence[str] = ()):
    """``backbone.features_and_intermediates`` (or ``forward_features``) of a zero probe image, in eval mode."""
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, in_chans, probe, probe)
            return backbone.features_and_intermediates(x, list(layers)) if layers else \
                (backbone.forward_features(x), {})
    finally:
        backbone.train(was_training)


def feature_stride(backbone: nn.Module, in_chans: int, probe: int = 64) -> int:
    """Input pixels per feature-map cell of ``backbone.forward_features`` (measured on a probe image)."""
    return max(1, round(probe / _probe(backbone, in_chans, probe)[0].shape[-1]))


def layer_strides(backbone: nn.Module, in_chans: int, probe: int = 64) -> dict[str, tuple[int, int]]:
    """``{name: (stride, channels)}`` of the backbone's ``feature_layers`` that give maps (a classifier's
    stages, for a detector's pyramid), measured on a probe image; empty for a backbone without them."""
    layers = list(getattr(backbone, "feature_layers", []))
    if not layers or not hasattr(backbone, "features_and_intermediates"):
        return {}
    outs = _probe(backbone, in_chans, probe, layers)[1]
    return {n: (max(1, round(probe / o.shape[-1])), o.shape[1]) for n, o in outs.items() if o.dim() == 4}


__all__ = ["RoIPool", "warp_crops", "feature_stride", "layer_strides", "KINDS"]
