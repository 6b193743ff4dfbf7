"""Faster R-CNN: Fast R-CNN whose proposals come from a Region Proposal Network on the same features.

Data flow (backbone ``cnn``, stride 8)::

    image (B, 3, 128, 128) -> forward_features -> (B, 128, 16, 16) --+--> RPN: 3x3 conv, then per position
                                                                      |   and anchor (3 sizes x 3 ratios):
                                                                      |   objectness + 4 box deltas
                                                                      |   -> decode, NMS 0.7 -> top proposals
                                                                      +--> the RoI heads of FastRCNN on them

Everything but the proposal source is :class:`~dcvkit.models.detect.fast_rcnn.FastRCNN` (this class
inherits it: backbone, RoI pooling, class and box heads, their loss); the RPN is torchvision's
``RegionProposalNetwork`` with its ``AnchorGenerator`` and ``RPNHead`` (anchors centred on each feature-map
position, matched at IoU >= 0.7 / < 0.3, 256 anchors sampled per image, half positive). Both stages are
trained together (approximate joint training, as torchvision does): loss = RPN objectness + RPN box +
RoI classification + RoI box.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead

from dcvkit.models.detect.base import split_post
from dcvkit.models.detect.fast_rcnn import FastRCNN
from dcvkit.models.detect.postprocess import Detections, PostProcess
from dcvkit.models.detect.targets import RoISampler
from dcvkit.models.registry import register_model


def anchor_generator(sizes: Sequence[float] = (24, 32, 48), ratios: Sequence[float] = (0.5, 1.0, 2.0)
                     ) -> AnchorGenerator:
    """One feature level; at each position ``len(sizes) * len(ratios)`` anchors of area ``size**2`` and
    height/width ``ratio`` (torchvision's convention: ``h = size * sqrt(ratio)``, ``w = size / sqrt(ratio)``,
    rounded to whole pixels), centred on ``(x * stride, y * stride)`` for feature cell ``(x, y)``."""
    return AnchorGenerator(sizes=(tuple(float(s) for s in sizes),), aspect_ratios=(tuple(float(r) for r in ratios),))


class FasterRCNN(FastRCNN):
    """Args (besides :class:`FastRCNN`'s):
        anchor_sizes, anchor_ratios: the anchors at each feature-map position.
        rpn_pre_nms, rpn_post_nms: proposals kept before / after the RPN's NMS, per image, in training
            and at test time (``(train, test)``).
        rpn_nms: IoU of the RPN's NMS.
    """

    proposal_method = "rpn"

    def __init__(self, *, anchor_sizes: Sequence[float] = (24, 32, 48),
                 anchor_ratios: Sequence[float] = (0.5, 1.0, 2.0),
                 rpn_pre_nms: Sequence[int] = (600, 300), rpn_post_nms: Sequence[int] = (300, 150),
                 rpn_nms: float = 0.7, **fast_rcnn_kwargs):
        super().__init__(**fast_rcnn_kwargs)
        in_chans = self.in_chans
        anchors = anchor_generator(anchor_sizes, anchor_ratios)
        channels = self.backbone.forward_features(torch.zeros(1, in_chans, 32, 32)).shape[1]
        self.rpn = RegionProposalNetwork(
            anchors, RPNHead(channels, anchors.num_anchors_per_location()[0]), fg_iou_thresh=0.7,
            bg_iou_thresh=0.3, batch_size_per_image=256, positive_fraction=0.5,
            pre_nms_top_n={"training": rpn_pre_nms[0], "testing": rpn_pre_nms[1]},
            post_nms_top_n={"training": rpn_post_nms[0], "testing": rpn_post_nms[1]}, nms_thresh=rpn_nms)

    def propose(self, images: Tensor, features: Tensor, boxes: Sequence[Tensor] | None = None
                ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """RPN proposals per image (n_i, 4) and, in training mode (``boxes`` given), the RPN's losses."""
        size = (images.shape[-2], images.shape[-1])
        targets = [{"boxes": b.float().to(features.device)} for b in boxes] if boxes is not None else None
        mode = self.rpn.training
        self.rpn.train(targets is not None)  # torchvision's RPN computes its loss in training mode only
        try:
            props, losses = self.rpn(ImageList(images, [size] * len(images)), {"0": features}, targets)
        finally:
            self.rpn.train(mode)
        return props, losses

    def loss(self, images, boxes, labels, proposals=None, sampler=RoISampler(), box_weight=1.0):
        """RPN loss + the RoI heads' loss on regions sampled from the RPN's proposals (and the ground truth)."""
        feats = self.backbone.forward_features(images)
        props, rpn = self.propose(images, feats, boxes)
        out = self.region_loss(images, boxes, labels, props, sampler, box_weight, features=feats)
        rpn_obj, rpn_box = rpn["loss_objectness"], rpn["loss_rpn_box_reg"]
        out["loss"] = out["loss"] + rpn_obj + rpn_box
        out.update(rpn_obj_loss=rpn_obj.detach(), rpn_box_loss=rpn_box.detach())
        return out

    @torch.inference_mode()
    def detect(self, images: Tensor, proposals: Sequence[Tensor] | None = None,
               post: PostProcess = PostProcess()) -> list[Detections]:
        """Detections per image; the RPN proposes the regions unless ``proposals`` are given."""
        feats = self.backbone.forward_features(images)
        if proposals is None:
            proposals, _ = self.propose(images, feats)
        scores, boxes = self.scores_and_boxes(*self.forward_rois(feats, proposals), proposals)
        return split_post(boxes, scores, proposals, post, (images.shape[-2], images.shape[-1]))


@register_model("detect")
def faster_rcnn(num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128, backbone: str = "cnn",
                roi: str = "align", roi_size: int = 3, width: float | None = None, **kwargs) -> FasterRCNN:
    """Faster R-CNN: Fast R-CNN's backbone and RoI heads, proposals from a region proposal network."""
    return FasterRCNN(num_classes=num_classes, in_chans=in_chans, img_size=img_size, backbone=backbone, roi=roi,
                      roi_size=roi_size, width=width, **kwargs)


__all__ = ["FasterRCNN", "faster_rcnn", "anchor_generator"]
