"""Dice and IoU against independent references (torchmetrics, segmentation_models_pytorch) and the
course's formula."""

from __future__ import annotations

import math

import pytest
import torch

from dcvkit.metrics.segmentation import confusion, dice_coefficient, scores


def test_course_formula_on_a_hand_made_example():
    # T: a 2x2 square (4 pixels); P: the square shifted one column (2 shared pixels) -> 2*2 / (4 + 4) = 0.5
    t = torch.zeros(4, 4, dtype=torch.bool)
    p = torch.zeros(4, 4, dtype=torch.bool)
    t[1:3, 0:2] = True
    p[1:3, 1:3] = True
    assert dice_coefficient(p, t) == 0.5
    cm = confusion(p.long()[None], t.long()[None], 2)
    s = scores(cm)
    assert s["per_class"][1]["dice"] == 0.5
    assert s["per_class"][1]["iou"] == pytest.approx(2 / 6)  # |T∩P| / |T∪P|
    assert s["mean_dice"] == 0.5  # foreground only
    assert s["pixel_accuracy"] == pytest.approx(12 / 16)  # 2 pixels of T missed, 2 of P wrong
    assert dice_coefficient(torch.zeros(3, 3), torch.zeros(3, 3)) == 1.0


def _random_masks(k: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, k, (6, 32, 40), generator=g)
    pred = torch.where(torch.rand(target.shape, generator=g) < 0.6, target, torch.randint(0, k, target.shape,
                                                                                         generator=g))
    return pred, target


def test_per_class_dice_and_iou_equal_torchmetrics():
    from torchmetrics.functional.classification import multiclass_f1_score, multiclass_jaccard_index

    k = 5
    pred, target = _random_masks(k)
    s = scores(confusion(pred, target, k), background=None)
    ref_dice = multiclass_f1_score(pred.flatten(), target.flatten(), k, average=None)
    ref_iou = multiclass_jaccard_index(pred.flatten(), target.flatten(), k, average=None)
    assert torch.allclose(torch.tensor([c["dice"] for c in s["per_class"]], dtype=torch.float64), ref_dice.double(), atol=1e-6)
    assert torch.allclose(torch.tensor([c["iou"] for c in s["per_class"]], dtype=torch.float64), ref_iou.double(), atol=1e-6)
    assert s["mean_iou"] == pytest.approx(float(ref_iou.mean()), abs=1e-6)


def test_dice_and_iou_equal_smp_with_ignore_index():
    smp = pytest.importorskip("segmentation_models_pytorch", reason="smp is in the dev extras")
    k = 4
    pred, target = _random_masks(k, seed=1)
    target[:, :3] = 255  # a void border, as in Pascal VOC
    tp, fp, fn, tn = smp.metrics.get_stats(pred, target, mode="multiclass", num_classes=k, ignore_index=255)
    tp, fp, fn, tn = (v.sum(0, keepdim=True) for v in (tp, fp, fn, tn))  # counted over the whole set
    ref_iou = smp.metrics.iou_score(tp, fp, fn, tn, reduction="none")[0]
    ref_dice = smp.metrics.f1_score(tp, fp, fn, tn, reduction="none")[0]
    s = scores(confusion(pred, target, k, ignore_index=255))
    assert torch.allclose(torch.tensor([c["dice"] for c in s["per_class"]], dtype=torch.float64), ref_dice.double(), atol=1e-6)
    assert torch.allclose(torch.tensor([c["iou"] for c in s["per_class"]], dtype=torch.float64), ref_iou.double(), atol=1e-6)
    assert s["mean_dice"] == pytest.approx(float(ref_dice[1:].mean()), abs=1e-6)  # background left out


def test_absent_class_has_no_score_and_is_left_out_of_the_mean():
    pred = torch.tensor([[[0, 1], [1, 0]]])
    s = scores(confusion(pred, pred, 3), ["bg", "a", "b"])
    assert s["per_class"][2]["dice"] is None and s["mean_dice"] == 1.0
    assert not math.isnan(s["mean_iou"])


