"""Fast R-CNN: one CNN pass over the whole image, RoI pooling of each proposal's part of the feature map
into a fixed grid, and two sibling heads (classes + background, class-specific box deltas) trained together
with the multi-task loss (:func:`dcvkit.losses.detection.fast_rcnn_loss`).

Data flow (backbone ``cnn``: three conv-pool blocks, stride 8)::

    image (B, 3, 128, 128) -> forward_features -> (B, 128, 16, 16)
      + K proposals -> RoI Align 3x3 (scale 1/8; or RoI max pooling) -> (K, 128, 3, 3) -> the backbone's own
      dense head (K, 256)
      -> cls_score (K, C + 1) and bbox_pred (K, C, 4)

It is the R-CNN network with the K crop passes replaced by one pass and a pooling layer: the same
registry classifier serves both, only the place where regions are cut out moves.
"""

from __future__ import annotations

import inspect
from typing import Sequence

from torch import Tensor, nn

from dcvkit.models.classify.base import pair
from dcvkit.models.detect.base import RegionDetector
from dcvkit.models.detect.roi import RoIPool, feature_stride
from dcvkit.models.registry import create_model, model_entry, register_model


class FastRCNN(RegionDetector):
    """Args:
        num_classes: object classes (the classifier has one more output: background).
        in_chans: image channels.
        img_size: the training image size.
        backbone: a registry classifier; its ``forward_features`` is run on the whole image and its dense
            head (``forward_head(pre_logits=True)``) on each pooled region.
        roi: ``pool`` (RoI max pooling, the paper's) or ``align`` (RoI Align).
        roi_size: side of the pooled grid (for the ``cnn`` family, also the grid its dense head expects).
        width: the backbone's width multiplier (None: its own).
    """

    proposal_method = "selective_search"

    def __init__(self, *, num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128,
                 backbone: str = "cnn", roi: str = "align", roi_size: int = 3, width: float | None = None,
                 **backbone_kwargs):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        if width is not None:
            backbone_kwargs["width"] = width
        if _sizes_head_by_grid(backbone):  # the cnn family: its dense head takes the pooled grid
            backbone_kwargs.setdefault("head_grid", roi_size)
        self.backbone = create_model(backbone, num_classes=num_classes + 1, in_chans=in_chans,
                                     img_size=list(self.img_size), **backbone_kwargs)
        self.stride = feature_stride(self.backbone, in_chans)
        self.roi = RoIPool(roi_size, 1.0 / self.stride, roi)
        hidden = self.backbone.get_classifier().in_features
        self.bbox_pred = nn.Linear(hidden, 4 * num_classes)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, images: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        return self.forward_rois(self.backbone.forward_features(images), regions)

    def forward_rois(self, features: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """The RoI heads on a feature map (B, C, H/stride, W/stride): pool each region, classify, regress."""
        pooled = self.roi(features, [r.to(features.device) for r in regions])
        hidden = self.backbone.forward_head(pooled, pre_logits=True)
        logits = self.backbone.get_classifier()(hidden)
        return logits, self.bbox_pred(hidden).view(-1, self.num_classes, 4)


def _sizes_head_by_grid(backbone: str) -> bool:
    """Whether the backbone's class sizes its dense head by the grid it pools to (``head_grid``)."""
    return "head_grid" in inspect.signature(model_entry(backbone).model_class.__init__).parameters


@register_model("detect")
def fast_rcnn(num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128, backbone: str = "cnn",
              roi: str = "align", roi_size: int = 3, width: float | None = None, **kwargs) -> FastRCNN:
    """Fast R-CNN: whole-image CNN, RoI pooling of selective-search proposals, class + box heads."""
    return FastRCNN(num_classes=num_classes, in_chans=in_chans, img_size=img_size, backbone=backbone, roi=roi,
                    roi_size=roi_size, width=width, **kwargs)


__all__ = ["FastRCNN", "fast_rcnn"]
