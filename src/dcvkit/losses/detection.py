"""Detection losses: Fast R-CNN's multi-task loss (classification over classes + background, smooth-L1 box
regression of the true class for foreground regions), YOLO v1's sum-squared loss, and the modern YOLO's
CIoU + objectness + IoU-aware classification loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def fast_rcnn_loss(logits: Tensor, deltas: Tensor | None, labels: Tensor, targets: Tensor, box_weight: float = 1.0,
                   beta: float = 1.0 / 9) -> tuple[Tensor, Tensor, Tensor]:
    """(total, classification, box) losses.

    Shape:
        logits (K, C + 1); deltas (K, C, 4) or None (a classifier without box head); labels (K,) in 0..C
        (0 = background); targets (K, 4) encoded deltas (used where labels > 0).

    The box term is summed over foreground regions and divided by K, as in torchvision's RoI heads, so
    it weighs the same whatever the foreground share of the sample.
    """
    cls = F.cross_entropy(logits.float(), labels)
    if deltas is None:
        return cls, cls, torch.zeros((), device=logits.device)
    fg = (labels > 0).nonzero().flatten()
    if len(fg) == 0:
        box = deltas.sum() * 0.0
    else:
        pred = deltas[fg, labels[fg] - 1].float()
        box = F.smooth_l1_loss(pred, targets[fg].float(), beta=beta, reduction="sum") / max(len(labels), 1)
    return cls + box_weight * box, cls, box





def aligned_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of ``a[i]`` with ``b[i]`` (n, 4) -> (n,) (torchvision's box_iou gives the full n x n matrix)."""
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1) + (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    return inter / (area - inter).clamp_min(1e-9)


def yolo_loss(pred: Tensor, obj: Tensor, cls: Tensor, matched: Tensor, gt_boxes: list[Tensor],
              gt_labels: list[Tensor], box_gain: float = 5.0) -> dict[str, Tensor]:
    """``yolo``'s loss (YOLOX's normalisation: every term summed and divided by the number of positives).

    * box: ``1 - CIoU`` (torchvision ``complete_box_iou_loss``) of each positive cell's box with its object;
    * objectness: binary cross-entropy over all cells, target 1 at positives, 0 elsewhere;
    * classes: binary cross-entropy at positives, IoU-aware target: the object's class gets the IoU of the
      predicted box with it (detached), the others 0, so class scores rank boxes by their quality.

    Shape:
        pred (N, K, 4) pixels; obj (N, K) logits; cls (N, K, C) logits; matched (N, K) object index or -1;
        gt_boxes / gt_labels: per image (n_i, 4) / (n_i,).
    """
    from torchvision.ops import complete_box_iou_loss

    pos = matched >= 0
    num_pos = max(int(pos.sum()), 1)
    obj_loss = F.binary_cross_entropy_with_logits(obj, pos.to(obj.dtype), reduction="sum") / num_pos
    if not pos.any():
        zero = pred.sum() * 0.0 + cls.sum() * 0.0
        return {"loss": obj_loss + zero, "box_loss": zero.detach(), "obj_loss": obj_loss.detach(),
                "cls_loss": zero.detach()}
    img, cell = pos.nonzero(as_tuple=True)
    counts = torch.tensor([len(b) for b in gt_boxes], device=img.device)
    flat = (torch.cumsum(counts, 0) - counts)[img] + matched[img, cell]  # index into the batch's objects
    tb = torch.cat(gt_boxes).to(pred.dtype)[flat]
    tl = torch.cat(gt_labels).long()[flat]
    pb = pred[img, cell]
    box_loss = complete_box_iou_loss(pb, tb, reduction="sum") / num_pos
    target = torch.zeros_like(cls[img, cell])
    target[torch.arange(len(tl), device=tl.device), tl] = aligned_iou(pb.detach(), tb).clamp(0, 1).to(target.dtype)
    cls_loss = F.binary_cross_entropy_with_logits(cls[img, cell], target, reduction="sum") / num_pos
    return {"loss": box_gain * box_loss + obj_loss + cls_loss, "box_loss": box_loss.detach(),
            "obj_loss": obj_loss.detach(), "cls_loss": cls_loss.detach()}


def yolo_v1_loss(xywh: Tensor, conf: Tensor, probs: Tensor, targets: list[dict[str, Tensor]],
                 lambda_coord: float = 5.0, lambda_noobj: float = 0.5) -> dict[str, Tensor]:
    """YOLO v1's sum-squared loss (Redmon et al. 2016, eq. 3), summed over the grid, averaged over images::

        lambda_coord * sum_resp [(x - x^)^2 + (y - y^)^2 + (sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]
        + sum_resp (C - IoU)^2 + lambda_noobj * sum_not_resp C^2 + sum_cells_with_object sum_c (p(c) - p^(c))^2

    Shape:
        xywh (N, S, S, B, 4) (x, y in the cell, sqrt w, sqrt h); conf (N, S, S, B); probs (N, S, S, C);
        targets: per image, :func:`~dcvkit.models.detect.targets.yolo_v1_assign`'s dict.
    """
    t = {k: torch.stack([d[k] for d in targets]) for k in targets[0]}
    resp, has = t["responsible"], t["has_object"]
    n = len(xywh)
    coord = (((xywh - t["box"]) ** 2).sum(-1) * resp).sum() / n
    obj = (((conf - t["iou"]) ** 2) * resp).sum() / n
    noobj = ((conf ** 2) * ~resp).sum() / n
    onehot = F.one_hot(t["classes"].clamp_min(0), probs.shape[-1]).to(probs.dtype)
    cls = (((probs - onehot) ** 2).sum(-1) * has).sum() / n
    total = lambda_coord * coord + obj + lambda_noobj * noobj + cls
    return {"loss": total, "box_loss": coord.detach(), "obj_loss": obj.detach(), "noobj_loss": noobj.detach(),
            "cls_loss": cls.detach()}
__all__ = ["fast_rcnn_loss", "yolo_loss", "yolo_v1_loss", "aligned_iou"]
