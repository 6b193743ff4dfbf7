"""Detectors that run a CNN on every region, cut out and warped to a fixed size: the brute-force sliding
window (regions: a window pyramid, here) and R-CNN (regions: selective search; then one linear SVM per class
and box regressors on the CNN's features: :mod:`dcvkit.models.detect.rcnn`).

Data flow (R-CNN, crop 40)::

    image (1, 3, 128, 128) + P proposals -> warp_crops -> (P, 3, 40, 40) -> CNN -> (P, hidden) features
      -> fine-tuning: softmax over classes + background    -> after fit_svms: per-class SVM scores (P, C)
                                                              and ridge box deltas (P, C, 4)

One CNN pass per region is the cost the course points at: ~300-2,000 passes per image.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from dcvkit.models.classify.base import pair
from dcvkit.models.detect.base import RegionDetector
from dcvkit.models.detect.roi import warp_crops
from dcvkit.models.registry import create_model, register_model

CHUNK = 1024  # regions per CNN pass at inference: bounds memory for thousands of proposals


class CropDetector(RegionDetector):
    """A classifier over warped crops of the regions. Subclasses say where the regions come from
    (:class:`SlidingWindowDetector`; R-CNN in :mod:`dcvkit.models.detect.rcnn`).

    Args:
        num_classes: object classes (the CNN has one more output: background).
        in_chans: image channels.
        img_size: the image size the detector is trained on (regions are in its pixels).
        backbone: a registry classifier (``dcv models --task classify``) built for ``crop_size`` inputs.
        crop_size: side of the warped crops.
        width: the backbone's width multiplier (None: its own).
        backbone_kwargs: passed to the backbone's builder (``dropout``...).
    """

    kind = "crop"
    # a step costs a CNN pass per sampled region: fewer epochs, 16 regions per image (R-CNN's 128 per batch of
    # 8), and region accuracy to monitor (detecting the validation images every epoch would cost more than
    # training)
    defaults = {"epochs": 8, "batch_size": 8, "rois_per_image": 16, "mosaic": 0.0, "affine": 0.0, "ema": 0.0,
                "monitor": "val_acc"}

    def __init__(self, *, num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128,
                 backbone: str = "cnn", crop_size: int = 40, width: float | None = None, **backbone_kwargs):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        self.crop_size = crop_size
        if width is not None:
            backbone_kwargs["width"] = width
        self.backbone = create_model(backbone, num_classes=num_classes + 1, in_chans=in_chans, img_size=crop_size,
                                     **backbone_kwargs)

    def crops(self, images: Tensor, regions: Sequence[Tensor]) -> Tensor:
        """(K, C, crop, crop) warped crops of every region."""
        return warp_crops(images, [r.to(images.device) for r in regions], self.crop_size)

    def forward(self, images: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:
        return self.backbone(self.crops(images, regions)), None

    def _chunked(self, images: Tensor, regions: Sequence[Tensor], pre_logits: bool) -> Tensor:
        """The CNN over every region's crop, ``CHUNK`` crops at a time: (K, hidden) features or (K, C + 1) logits."""
        crops = self.crops(images, regions)
        net = self.backbone
        out = [net.forward_head(net.forward_features(c), pre_logits=pre_logits) for c in crops.split(CHUNK)]
        width = net.get_classifier().in_features if pre_logits else self.num_classes + 1
        return torch.cat(out) if out else crops.new_zeros(0, width)

    def features(self, images: Tensor, regions: Sequence[Tensor]) -> Tensor:
        """(K, hidden) penultimate CNN features of every region (R-CNN's "fc7")."""
        return self._chunked(images, regions, pre_logits=True)

    def predict_regions(self, images: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        flat = torch.cat(list(regions)).to(images.device).float()
        logits = self._chunked(images, regions, pre_logits=False)
        return logits.float().softmax(1)[:, 1:], flat[:, None].expand(-1, self.num_classes, 4)


class SlidingWindowDetector(CropDetector):
    """Brute force: the CNN on every window of a pyramid (sizes, aspect ratios, stride)."""

    proposal_method = "sliding_window"


@register_model("detect")
def sliding_window(num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128,
                   backbone: str = "cnn", crop_size: int = 40, width: float | None = None,
                   **kwargs) -> SlidingWindowDetector:
    """Brute force: a CNN on every window of a pyramid (sizes, aspect ratios, stride), then NMS."""
    return SlidingWindowDetector(num_classes=num_classes, in_chans=in_chans, img_size=img_size, backbone=backbone,
                                 crop_size=crop_size, width=width, **kwargs)


__all__ = ["CropDetector", "SlidingWindowDetector", "sliding_window"]
