"""Detectors that run a CNN on every region, cut out and warped to a fixed size: the brute-force sliding
window (regions: a window pyramid) and R-CNN (regions: selective search; then one linear SVM per class
and box regressors on the CNN's features, see :mod:`dcvkit.models.detect.rcnn`).

Data flow (R-CNN, crop 40)::

    image (1, 3, 128, 128) + P proposals -> warp_crops -> (P, 3, 40, 40) -> CNN -> (P, hidden) features
      -> fine-tuning: softmax over classes + background    -> after fit_svms: per-class SVM scores (P, C)
                                                              and ridge box deltas (P, C, 4)

One CNN pass per region is the cost the course points at: ~300-2,000 passes per image.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from dcvkit.models.classify.base import pair
from dcvkit.models.detect.base import RegionDetector
from dcvkit.models.detect.box_coder import decode
from dcvkit.models.detect.roi import warp_crops
from dcvkit.models.registry import create_model, register_model

CHUNK = 1024  # regions per CNN pass at inference: bounds memory for thousands of proposals


class CropDetector(RegionDetector):
    """A classifier over warped crops of the regions.

    Args:
        num_classes: object classes (the CNN has one more output: background).
        in_chans: image channels.
        img_size: the image size the detector is trained on (regions are in its pixels).
        backbone: a registry classifier (``dcv models --task classify``) built for ``crop_size`` inputs.
        crop_size: side of the warped crops.
        proposal_method: ``sliding_window`` or ``selective_search``.
        svm: keep room for R-CNN's per-class linear SVMs and box regressors (fitted after the CNN).
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128,
                 backbone: str = "cnn", crop_size: int = 40, proposal_method: str = "selective_search",
                 svm: bool = False, **backbone_kwargs):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        self.crop_size, self.proposal_method = crop_size, proposal_method
        self.backbone = create_model(backbone, num_classes=num_classes + 1, in_chans=in_chans, img_size=crop_size,
                                     **backbone_kwargs)
        self.has_svm = svm
        if svm:
            dim = self.backbone.get_classifier().in_features
            # Filled by fit_svms: standardisation of the features, SVM hyperplanes, ridge box regressors.
            self.register_buffer("feat_mean", torch.zeros(dim))
            self.register_buffer("feat_std", torch.ones(dim))
            self.register_buffer("svm_fitted", torch.zeros((), dtype=torch.bool))
            self.svm = nn.Linear(dim, num_classes)
            self.bbox_reg = nn.Linear(dim, 4 * num_classes)
            for p in (*self.svm.parameters(), *self.bbox_reg.parameters()):
                p.requires_grad_(False)
                nn.init.zeros_(p)

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
        if self.has_svm and bool(self.svm_fitted):
            f = (self.features(images, regions) - self.feat_mean) / self.feat_std
            scores = torch.sigmoid(self.svm(f))  # monotone in the SVM margin; [0, 1] for thresholds and plots
            deltas = self.bbox_reg(f).view(-1, self.num_classes, 4)
            return scores, decode(deltas, flat[:, None])
        logits = self._chunked(images, regions, pre_logits=False)
        return logits.float().softmax(1)[:, 1:], flat[:, None].expand(-1, self.num_classes, 4)


@register_model("detect")
def sliding_window(num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128,
                   backbone: str = "cnn", crop_size: int = 40, **kwargs) -> CropDetector:
    """Brute force: a CNN on every window of a pyramid (sizes, aspect ratios, stride), then NMS."""
    return CropDetector(num_classes, in_chans, img_size, backbone, crop_size, "sliding_window", False, **kwargs)


@register_model("detect")
def rcnn(num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128, backbone: str = "cnn",
         crop_size: int = 40, **kwargs) -> CropDetector:
    """R-CNN: selective search, a CNN on each warped proposal, linear SVMs per class, ridge box regression."""
    return CropDetector(num_classes, in_chans, img_size, backbone, crop_size, "selective_search", True, **kwargs)


__all__ = ["CropDetector", "sliding_window", "rcnn"]
