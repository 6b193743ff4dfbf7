"""Which regions (or grid cells) teach what.

* :class:`RoISampler` / :func:`match`: match proposals to ground truth and sample a balanced set of
  training regions (the region detectors).
* :func:`centre_assign`: ``yolo``'s anchor-free assignment of grid cells to objects.
* :func:`yolo_v1_assign`: YOLO v1's "the cell holding an object's centre, and its predictor that overlaps
  the object most, are responsible for it".


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


def centre_assign(centres: Tensor, gt_boxes: Tensor, stride: float, radius: float = 1.5) -> Tensor:
    """Anchor-free assignment (FCOS's centre sampling, as YOLOX uses it as its prior): a cell is a positive
    for an object when its centre lies inside the object's box and within ``radius * stride`` pixels of the
    box centre (in x and in y); every object also keeps the cell nearest its centre, so a small object is
    never left without one. A cell claimed by several objects goes to the smallest.

    Shape:
        centres (K, 2) cell centres (x, y) pixels; gt_boxes (n, 4) -> (K,) index of the object, -1 = negative.
    """
    k = len(centres)
    if len(gt_boxes) == 0:
        return torch.full((k,), -1, dtype=torch.long, device=centres.device)
    x, y = centres[:, 0:1], centres[:, 1:2]
    g = gt_boxes
    gcx, gcy = (g[:, 0] + g[:, 2]) / 2, (g[:, 1] + g[:, 3]) / 2
    inside = (x > g[:, 0]) & (x < g[:, 2]) & (y > g[:, 1]) & (y < g[:, 3])
    near = ((x - gcx).abs() < radius * stride) & ((y - gcy).abs() < radius * stride)
    cand = inside & near
    nearest = ((x - gcx) ** 2 + (y - gcy) ** 2).argmin(0)
    cand[nearest, torch.arange(len(g), device=g.device)] = True
    area = ((g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])).expand(k, -1)
    cost, idx = torch.where(cand, area, torch.full_like(area, float("inf"))).min(1)
    return torch.where(torch.isfinite(cost), idx, torch.full_like(idx, -1))


def task_aligned_assign(pred_boxes: Tensor, scores: Tensor, centres: Tensor, gt_boxes: Tensor, gt_labels: Tensor,
                        topk: int = 10, alpha: float = 1.0, beta: float = 6.0) -> Tensor:
    """Task-aligned assignment (TOOD, Feng et al. 2021; YOLOv8's): each object takes the ``topk`` cells whose
    centres lie in its box and whose predictions align best with it, ``t = score^alpha * IoU^beta`` (score:
    the predicted probability of the object's class; IoU: of the predicted box with the object), over every
    level at once. An object with no cell centre inside (smaller than a stride) takes the nearest cell. A cell
    chosen by several objects goes to the one its box overlaps most.

    Shape:
        pred_boxes (K, 4) pixels; scores (K, C) in [0, 1]; centres (K, 2); gt_boxes (n, 4); gt_labels (n,)
        -> (K,) index of the object, -1 = negative.
    """
    from torchvision.ops import box_iou

    k = len(centres)
    if len(gt_boxes) == 0:
        return torch.full((k,), -1, dtype=torch.long, device=centres.device)
    x, y = centres[:, 0:1], centres[:, 1:2]
    g = gt_boxes
    inside = (x > g[:, 0]) & (x < g[:, 2]) & (y > g[:, 1]) & (y < g[:, 3])  # (K, n)
    iou = box_iou(pred_boxes.float(), g.float()).clamp(0, 1)
    align = scores[:, gt_labels.long()].float().pow(alpha) * iou.pow(beta)
    top = torch.where(inside, align, torch.full_like(align, -1.0)).topk(min(topk, k), dim=0).indices  # (topk, n)
    chosen = torch.zeros_like(inside).scatter_(0, top, True) & inside
    gcx, gcy = (g[:, 0] + g[:, 2]) / 2, (g[:, 1] + g[:, 3]) / 2
    empty = ~chosen.any(0)
    if empty.any():
        nearest = ((x - gcx) ** 2 + (y - gcy) ** 2).argmin(0)
        cols = empty.nonzero().flatten()
        chosen[nearest[cols], cols] = True
    best = torch.where(chosen, iou, torch.full_like(iou, -1.0)).argmax(1)
    return torch.where(chosen.any(1), best, torch.full_like(best, -1))


def yolo_v1_assign(gt_boxes: Tensor, gt_labels: Tensor, pred_boxes: Tensor, img_size: tuple[int, int]
                   ) -> dict[str, Tensor]:
    """YOLO v1's targets for one image.

    The object whose centre falls in cell (i, j) is that cell's (one object per cell: a later object in the
    same cell is left out, as the S x S x (5B + C) output cannot hold two classes); of the cell's B
    predictors, the one whose current box has the highest IoU with the object is "responsible" for it.

    Shape:
        gt_boxes (n, 4) pixels, gt_labels (n,), pred_boxes (S, S, B, 4) pixels (the network's current boxes).
    Returns:
        ``responsible`` (S, S, B) bool, ``box`` (S, S, B, 4) targets (x, y in the cell, sqrt w, sqrt h of the
        image), ``iou`` (S, S, B) the responsible predictor's IoU (its confidence target), ``has_object``
        (S, S) bool, ``classes`` (S, S) the class index, -1 where no object.
    """
    sy, sx, b, _ = pred_boxes.shape
    h, w = img_size
    ch, cw = h / sy, w / sx
    dev = pred_boxes.device
    out = {"responsible": torch.zeros(sy, sx, b, dtype=torch.bool, device=dev),
           "box": torch.zeros(sy, sx, b, 4, device=dev), "iou": torch.zeros(sy, sx, b, device=dev),
           "has_object": torch.zeros(sy, sx, dtype=torch.bool, device=dev),
           "classes": torch.full((sy, sx), -1, dtype=torch.long, device=dev)}
    for box, label in zip(gt_boxes.float(), gt_labels):
        cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
        j, i = min(int(cx / cw), sx - 1), min(int(cy / ch), sy - 1)
        if out["has_object"][i, j]:
            continue
        ious = box_iou(pred_boxes[i, j].float(), box[None])[:, 0]
        r = int(ious.argmax())
        out["has_object"][i, j] = True
        out["classes"][i, j] = label
        out["responsible"][i, j, r] = True
        out["iou"][i, j, r] = ious[r]
        out["box"][i, j, r] = torch.stack([box.new_tensor(cx / cw - j), box.new_tensor(cy / ch - i),
                                           ((box[2] - box[0]) / w).clamp_min(0).sqrt(),
                                           ((box[3] - box[1]) / h).clamp_min(0).sqrt()])
    return out


__all__ = ["task_aligned_assign", "RoISampler", "match", "centre_assign", "yolo_v1_assign"]
