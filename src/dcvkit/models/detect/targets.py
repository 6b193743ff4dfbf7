"""Which regions teach what: match proposals to ground truth and sample a balanced set of training regions.

Fast R-CNN's recipe (Girshick 2015, section 2.3), also used here to fine-tune the R-CNN and sliding-window
crop classifiers: the ground-truth boxes join the proposals; a region is foreground (its object's class)
when its best IoU with a ground-truth box is at least ``fg_iou``, background when below ``bg_iou``, and
ignored in between; each image contributes ``per_image`` regions, at most ``fg_fraction`` of them
foreground.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import box_iou

from dcvkit.models.detect.box_coder import encode


@dataclass(frozen=True)
class RoISampler:
    per_image: int = 64
    fg_fraction: float = 0.25
    fg_iou: float = 0.5
    bg_iou: float = 0.5

    def __call__(self, proposals: Tensor, gt_boxes: Tensor, gt_labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Sampled regions (n, 4), their labels (n,) (0 = background, ``k + 1`` = class ``k``) and box-regression
        targets (n, 4) (deltas to the matched ground truth; zeros for background)."""
        rois = torch.cat([proposals.reshape(-1, 4).to(gt_boxes), gt_boxes])
        labels, matched = match(rois, gt_boxes, gt_labels, self.fg_iou, self.bg_iou)
        fg = (labels > 0).nonzero().flatten()
        bg = (labels == 0).nonzero().flatten()
        n_fg = min(len(fg), int(self.per_image * self.fg_fraction))
        n_bg = min(len(bg), self.per_image - n_fg)
        keep = torch.cat([fg[torch.randperm(len(fg), device=fg.device)[:n_fg]],
                          bg[torch.randperm(len(bg), device=bg.device)[:n_bg]]])
        rois, labels, matched = rois[keep], labels[keep], matched[keep]
        targets = torch.zeros_like(rois)
        is_fg = labels > 0
        if is_fg.any():
            targets[is_fg] = encode(rois[is_fg], gt_boxes[matched[is_fg]])
        return rois, labels, targets


def match(rois: Tensor, gt_boxes: Tensor, gt_labels: Tensor, fg_iou: float = 0.5, bg_iou: float = 0.5
          ) -> tuple[Tensor, Tensor]:
    """Per region: label (0 background, ``k + 1`` class ``k``, -1 ignored) and the index of the best-matching
    ground-truth box (0 when there is none)."""
    if len(gt_boxes) == 0:
        return torch.zeros(len(rois), dtype=torch.long, device=rois.device), \
            torch.zeros(len(rois), dtype=torch.long, device=rois.device)
    best, idx = box_iou(rois, gt_boxes).max(1)
    labels = gt_labels[idx] + 1
    labels[best < fg_iou] = -1
    labels[best < bg_iou] = 0
    return labels, idx


__all__ = ["RoISampler", "match"]
