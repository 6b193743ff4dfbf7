"""``keypoint_rcnn``: the detection lineage continued - the project's ``faster_rcnn`` (backbone, RPN, RoI box
head) finds the people, and Mask R-CNN's keypoint head (He et al. 2017; torchvision's ``KeypointRCNN``)
estimates their keypoints from RoI features of the same feature map.

Data flow (backbone ``cnn``, stride 8)::

    image (B, 3, 128, 128) -> forward_features (B, 128, 16, 16) -> RPN -> RoI box head -> people (boxes, scores)
      the backbone's stride-4 stage (B, 64, 32, 32) + the stride-8 map upsampled (FPN's top-down step, one
      level) -> 3x3 conv -> the keypoint map (B, 64, 32, 32)
      people's boxes, padded by ``padding`` -> RoI Align 14x14 of the keypoint map -> convs (torchvision's
      KeypointRCNNHeads) -> deconv x2 + bilinear x2 (KeypointRCNNPredictor) -> (n, K, 56, 56) keypoint logits

The keypoint head reads a stride-4 map, as Mask R-CNN's keypoint head reads FPN's finest levels for small
people (torchvision's ``keypointrcnn_resnet50_fpn``): on the stride-8 map a 40-pixel person is five cells,
too coarse to place a keypoint to the strict OKS thresholds. Measured on the default figures: test OKS AP
0.632 vs 0.624 with ``fine_channels=0`` (the stride-8 map), the same step time (docs/results.md, issue 25).

Training adds to Faster R-CNN's four losses the keypoint loss of torchvision (``keypointrcnn_loss``: per
labelled keypoint, cross-entropy over the 56 x 56 positions of its heatmap, the target the position the
keypoint falls in) on up to ``kpt_rois`` regions per image that overlap a person by IoU >= 0.5. The RoIs are
the boxes padded by ``padding`` because a person's box is what shows of them: a keypoint hidden behind
another person may lie outside it. Decoding is this package's :func:`~dcvkit.models.pose.heatmap.
decode_heatmaps` (batched, sub-pixel) on the softmax of the logits, not torchvision's
``heatmaps_to_keypoints`` (a bicubic resize per RoI in a Python loop, whole-pixel argmax). A keypoint's
confidence is the softmax's mass in the 3x3 pixels about its peak, and a person's score is its box's score
times the mean confidence of its keypoints that show (the heatmap model's rescoring, HRNet's): OKS AP ranks
people by score, and the box head's score says a person is there, not that the keypoints are right.
Measured on the default figures with the same weights: test OKS AP 0.681 vs 0.632 by the box's score alone
(docs/results.md, issue 25).
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
from torchvision.models.detection.roi_heads import keypointrcnn_loss
from torchvision.ops import box_iou, roi_align

from dcvkit.models.detect.base import split_post
from dcvkit.models.detect.faster_rcnn import FasterRCNN
from dcvkit.models.detect.postprocess import PostProcess
from dcvkit.models.detect.roi import layer_strides
from dcvkit.models.detect.targets import RoISampler
from dcvkit.models.pose.base import PoseDetections, keypoint_score
from dcvkit.models.pose.heatmap import decode_heatmaps
from dcvkit.models.registry import register_model


def pad_boxes(boxes: Tensor, factor: float) -> Tensor:
    """Boxes (n, 4) scaled by ``factor`` about their centres."""
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).clamp_min(1.0) * factor / 2
    return torch.cat([c - half, c + half], 1)


class KeypointRCNN(FasterRCNN):
    """Faster R-CNN for one class (person) with a keypoint head. Args (besides :class:`FasterRCNN`'s):
        num_keypoints: K. kpt_size: the RoI Align grid of the keypoint head (heatmaps are 4x it).
        kpt_layers: the head's 3x3 convolution widths. kpt_rois: keypoint-training regions per image.
        padding: keypoint RoIs are the boxes scaled by this.
        fine_channels: width of the stride-4 keypoint map (0: the keypoint head reads the stride-8 map
            the box head reads; also where the backbone has no stride-4 stage).
    """

    needs_boxes: ClassVar[bool] = False  # finds its own people
    defaults: ClassVar[dict] = {"epochs": 12, "batch_size": 8}

    def __init__(self, *, num_keypoints: int = 17, kpt_size: int = 14, kpt_layers: Sequence[int] = (64, 64, 64),
                 kpt_rois: int = 4, padding: float = 1.2, fine_channels: int = 64, **faster_rcnn_kwargs):
        faster_rcnn_kwargs.setdefault("anchor_sizes", (32, 48, 64, 96))
        faster_rcnn_kwargs.setdefault("anchor_ratios", (1.0, 2.0, 3.0))  # people stand: taller than wide
        super().__init__(num_classes=1, **faster_rcnn_kwargs)
        self.num_keypoints, self.kpt_size, self.kpt_rois, self.padding = num_keypoints, kpt_size, kpt_rois, padding
        channels = self.rpn.head.conv[0][0].in_channels
        stride4 = [(n, c) for n, (st, c) in layer_strides(self.backbone, self.in_chans).items() if st == 4]
        self.fine_layer, fine_in = stride4[-1] if fine_channels and stride4 else (None, 0)
        self.kpt_stride = 4 if self.fine_layer else self.stride
        if self.fine_layer:
            self.fine_skip = nn.Conv2d(fine_in, fine_channels, 1)
            self.fine_lateral = nn.Conv2d(channels, fine_channels, 1)
            self.fine = nn.Sequential(nn.Conv2d(fine_channels, fine_channels, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(fine_channels), nn.ReLU(inplace=True))
            channels = fine_channels
        self.kpt_head = KeypointRCNNHeads(channels, list(kpt_layers))
        self.kpt_predictor = KeypointRCNNPredictor(kpt_layers[-1], num_keypoints)

    def features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The backbone's map the RPN and box head read (stride 8) and the keypoint map (stride
        ``kpt_stride``: the same map when there is no stride-4 level)."""
        if not self.fine_layer:
            feats = self.backbone.forward_features(images)
            return feats, feats
        feats, early = self.backbone.features_and_intermediates(images, [self.fine_layer])
        f4 = self.fine_skip(early[self.fine_layer])
        up = F.interpolate(self.fine_lateral(feats), size=f4.shape[-2:], mode="nearest")
        return feats, self.fine(f4 + up)

    def keypoint_logits(self, kfeats: Tensor, boxes: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """(n, K, 4 kpt_size, 4 kpt_size) logits of the people in ``boxes`` (per image) and their RoIs, from
        the keypoint map ``kfeats``."""
        rois = [pad_boxes(b.float(), self.padding).to(kfeats) for b in boxes]
        x = roi_align(kfeats, rois, self.kpt_size, 1.0 / self.kpt_stride, sampling_ratio=2, aligned=True)
        return self.kpt_predictor(self.kpt_head(x)), rois

    def loss(self, images: Tensor, boxes: list[Tensor], keypoints: list[Tensor], areas: list[Tensor] | None = None,
             proposals=None, sampler: RoISampler = RoISampler(), box_weight: float = 1.0, **_: object
             ) -> dict[str, Tensor]:
        """Faster R-CNN's loss (RPN + RoI heads) for the people's boxes, plus the keypoint loss on regions
        (proposals and the true boxes) that overlap a person by IoU >= 0.5, matched to that person."""
        feats, kfeats = self.features(images)
        boxes = [b.float().to(feats.device) for b in boxes]
        labels = [torch.zeros(len(b), dtype=torch.long, device=feats.device) for b in boxes]
        props, rpn = self.propose(images, feats, boxes)
        out = self.region_loss(images, boxes, labels, props, sampler, box_weight, features=feats)
        regions, matched, targets = [], [], []
        for p, b, k in zip(props, boxes, keypoints):
            if len(b) == 0:
                continue
            cand = torch.cat([p.detach().to(b), b])
            best, idx = box_iou(cand, b).max(1)
            pos = (best >= 0.5).nonzero().flatten()
            pos = pos[torch.randperm(len(pos), device=pos.device)[:self.kpt_rois]]
            regions.append(cand[pos])
            matched.append(idx[pos])
            targets.append(k.to(feats))
        if regions:
            logits, rois = self.keypoint_logits(kfeats, regions)
            kpt = keypointrcnn_loss(logits.contiguous(), rois, targets, matched)  # its .view needs contiguous
        else:
            kpt = feats.sum() * 0.0
        rpn_obj, rpn_box = rpn["loss_objectness"], rpn["loss_rpn_box_reg"]
        out["loss"] = out["loss"] + rpn_obj + rpn_box + kpt
        out.update(rpn_obj_loss=rpn_obj.detach(), rpn_box_loss=rpn_box.detach(), kpt_loss=kpt.detach())
        return out

    @torch.inference_mode()
    def detect_pose(self, images: Tensor, score_thresh: float = 0.1, nms_iou: float = 0.5, top_k: int = 100,
                    **_: object) -> list[PoseDetections]:
        """People per image (Faster R-CNN's detections) with their keypoints, each scored by its box's score
        times the mean confidence of its keypoints that show (:func:`~dcvkit.models.pose.base.keypoint_score`;
        boxes given are ignored)."""
        feats, kfeats = self.features(images)
        proposals, _ = self.propose(images, feats)
        scores, boxes = self.scores_and_boxes(*self.forward_rois(feats, proposals), proposals)
        dets = split_post(boxes, scores, proposals, PostProcess(score_thresh, nms_iou, top_k),
                          (images.shape[-2], images.shape[-1]))
        found = [d.boxes for d in dets]
        if sum(len(b) for b in found):
            logits, rois = self.keypoint_logits(kfeats, found)
            probs = logits.float().flatten(2).softmax(-1).view_as(logits)
            kp = decode_heatmaps(probs, torch.cat(rois))
        else:
            kp = images.new_zeros(0, self.num_keypoints, 3)
        out, start = [], 0
        for d in dets:
            k = kp[start:start + len(d)]
            start += len(d)
            score = keypoint_score(d.scores, k[..., 2])
            best = score.argsort(descending=True)
            out.append(PoseDetections(d.boxes[best], score[best], k[best]))
        return out


@register_model("pose")
def keypoint_rcnn(num_classes: int = 1, num_keypoints: int = 17, in_chans: int = 3,
                  img_size: int | Sequence[int] = 128, backbone: str = "cnn", width: float | None = None,
                  **kwargs) -> KeypointRCNN:
    """Keypoint R-CNN: faster_rcnn for people + Mask R-CNN's keypoint head (RoI Align 14x14, 56x56 heatmaps)."""
    return KeypointRCNN(num_keypoints=num_keypoints, in_chans=in_chans, img_size=img_size, backbone=backbone,
                        width=width, roi="align", roi_size=3, **kwargs)


__all__ = ["KeypointRCNN", "keypoint_rcnn", "pad_boxes"]
