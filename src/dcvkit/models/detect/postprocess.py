"""From per-region class scores and boxes to detections: score threshold, per-class NMS, top-k."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import batched_nms, clip_boxes_to_image, remove_small_boxes


@dataclass
class Detections:
    """One image's detections, best first: boxes (n, 4) x1 y1 x2 y2 pixels, scores (n,), labels (n,) 0-based."""

    boxes: Tensor
    scores: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.scores)

    def to(self, device: str | torch.device) -> "Detections":
        return Detections(self.boxes.to(device), self.scores.to(device), self.labels.to(device))

    def scale(self, sx: float, sy: float) -> "Detections":
        return Detections(self.boxes * self.boxes.new_tensor([sx, sy, sx, sy]), self.scores, self.labels)

    def shift(self, dx: float, dy: float) -> "Detections":
        return Detections(self.boxes + self.boxes.new_tensor([dx, dy, dx, dy]), self.scores, self.labels)

    def select(self, index: Tensor) -> "Detections":
        """The detections at ``index`` (a boolean mask or positions), in its order."""
        return Detections(self.boxes[index], self.scores[index], self.labels[index])

    def clip(self, size: tuple[int, int], min_size: float = 1.0) -> "Detections":
        """Boxes clipped to an image of ``size`` (H, W); those left narrower or lower than ``min_size``
        pixels (e.g. boxes in a letterbox's padding) are dropped."""
        boxes = clip_boxes_to_image(self.boxes, size)
        keep = remove_small_boxes(boxes, min_size)
        return Detections(boxes[keep], self.scores[keep], self.labels[keep])


@dataclass(frozen=True)
class PostProcess:
    """Turn region outputs into detections.

    Args:
        score_thresh: drop (region, class) pairs scoring below this.
        nms_iou: within each class, suppress boxes overlapping a better one by more than this IoU.
        top_k: keep at most this many detections per image.
        min_size: drop boxes narrower or lower than this (pixels) after clipping.
    """

    score_thresh: float = 0.05
    nms_iou: float = 0.5
    top_k: int = 100
    min_size: float = 2.0

    def __call__(self, boxes: Tensor, scores: Tensor, image_size: tuple[int, int]) -> Detections:
        """``boxes`` (K, C, 4) per class (or (K, 4) shared), ``scores`` (K, C) in [0, 1]; ``image_size`` (H, W)."""
        # Threshold first, then gather the few (region, class) pairs left: on a dense grid (YOLO's 256 cells
        # x 10 classes, ~50 pairs above 0.05) this is a third of the ops of expanding every box per class.
        region, labels = (scores > self.score_thresh).nonzero(as_tuple=True)
        boxes = boxes[region] if boxes.ndim == 2 else boxes[region, labels]
        scores = scores[region, labels]
        boxes = clip_boxes_to_image(boxes, image_size)
        keep = remove_small_boxes(boxes, self.min_size)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes.float(), scores.float(), labels, self.nms_iou)[: self.top_k]
        return Detections(boxes[keep].float(), scores[keep].float(), labels[keep])


__all__ = ["Detections", "PostProcess"]
