"""The detection losses by hand: Fast R-CNN's multi-task loss (classes + smooth L1 on the true class's deltas)
and the anchor-free YOLO's loss (CIoU, objectness, IoU-aware classes)."""

from __future__ import annotations

import math

import pytest
import torch

from dcvkit.losses.detection import fast_rcnn_loss, yolo_loss


def test_fast_rcnn_loss_golden():
    logits = torch.zeros(2, 3)
    deltas = torch.zeros(2, 2, 4)
    labels = torch.tensor([1, 0])
    targets = torch.tensor([[0.1, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]])  # background targets are ignored
    total, cls, box = fast_rcnn_loss(logits, deltas, labels, targets)
    assert cls.item() == pytest.approx(math.log(3))
    assert box.item() == pytest.approx(0.5 * 0.1**2 / (1 / 9) / 2)   # smooth L1 (beta 1/9) summed, / K regions
    assert total.item() == pytest.approx(math.log(3) + box.item())
    no_box = fast_rcnn_loss(logits, None, labels, targets)
    assert no_box[0].item() == pytest.approx(math.log(3)) and no_box[2].item() == 0


def test_yolo_loss_by_hand():
    """Two cells, two classes; cell 0 is matched to a box it half covers, cell 1 is background.

    pred (0, 0, 10, 10) vs target (0, 0, 10, 20): IoU 0.5; CIoU = IoU - rho^2/c^2 - alpha v with
    rho^2 = 25 (centres 5 px apart), c^2 = 10^2 + 20^2, v = 4/pi^2 (atan(10/20) - atan(10/10))^2,
    alpha = v / (1 - IoU + v). Objectness logits 0, 0 (targets 1, 0): 2 log 2. Class logits (0, 2) with
    the IoU-aware target (0, 0.5): log 2 + softplus(2) - 0.5 * 2. Everything divided by 1 positive."""
    pred = torch.tensor([[[0.0, 0, 10, 10], [40, 40, 50, 50]]])
    obj = torch.zeros(1, 2)
    cls = torch.tensor([[[0.0, 2.0], [0.0, 0.0]]])
    matched = torch.tensor([[0, -1]])
    out = yolo_loss(pred, obj, cls, matched, [torch.tensor([[0.0, 0, 10, 20]])], [torch.tensor([1])], box_gain=5.0)
    v = 4 / math.pi**2 * (math.atan(10 / 20) - math.atan(1.0)) ** 2
    ciou = 0.5 - 25 / 500 - v / (0.5 + v) * v
    softplus2 = math.log1p(math.exp(2.0))
    assert out["box_loss"].item() == pytest.approx(1 - ciou, abs=1e-5)
    assert out["obj_loss"].item() == pytest.approx(2 * math.log(2), abs=1e-6)
    assert out["cls_loss"].item() == pytest.approx(math.log(2) + softplus2 - 1.0, abs=1e-6)
    assert out["loss"].item() == pytest.approx(5 * (1 - ciou) + 2 * math.log(2) + math.log(2) + softplus2 - 1.0,
                                               abs=1e-5)
    # a perfect box: no box loss, full class target
    out = yolo_loss(pred, obj, cls, matched, [torch.tensor([[0.0, 0, 10, 10]])], [torch.tensor([1])])
    assert out["box_loss"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["cls_loss"].item() == pytest.approx(math.log(2) + softplus2 - 2.0, abs=1e-6)
    # no objects: only the objectness term, against 1 (no positives -> divided by 1)
    out = yolo_loss(pred, obj, cls, torch.tensor([[-1, -1]]), [torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)])
    assert out["loss"].item() == pytest.approx(2 * math.log(2), abs=1e-6)

