"""dcvkit's COCO evaluation (faster-coco-eval) against pycocotools, the reference implementation."""

from __future__ import annotations

import pytest
import torch

from dcvkit.metrics.detection import STATS, coco_eval

CLASSES = ["shirt", "bag", "boot"]


def _scene_set(n: int = 30, seed: int = 0):
    """Ground truth and noisy predictions: jittered true boxes (some with the wrong class), false positives,
    missed objects, random scores; objects of several sizes so every COCO area range is populated."""
    g = torch.Generator().manual_seed(seed)
    gt_b, gt_l, pb, ps, pl = [], [], [], [], []
    for _ in range(n):
        k = int(torch.randint(0, 5, (1,), generator=g))
        xy = torch.rand(k, 2, generator=g) * 300
        wh = torch.cat([torch.rand(k, 2, generator=g) * 20 + 8, torch.rand(k, 2, generator=g) * 150 + 40])[
            torch.randperm(2 * k, generator=g)[:k]] if k else torch.zeros(0, 2)
        boxes = torch.cat([xy, xy + wh], 1)
        labels = torch.randint(0, 3, (k,), generator=g)
        keep = torch.rand(k, generator=g) > 0.2
        pred = boxes[keep] + torch.randn(int(keep.sum()), 4, generator=g) * 3
        plab = labels[keep].clone()
        flip = torch.rand(len(plab), generator=g) < 0.15
        plab[flip] = (plab[flip] + 1) % 3
        fp = torch.rand(2, 2, generator=g) * 300
        pred = torch.cat([pred, torch.cat([fp, fp + 30], 1)])
        plab = torch.cat([plab, torch.randint(0, 3, (2,), generator=g)])
        gt_b.append(boxes)
        gt_l.append(labels)
        pb.append(pred)
        ps.append(torch.rand(len(pred), generator=g))
        pl.append(plab)
    return gt_b, gt_l, pb, ps, pl


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_equals_pycocotools(seed):
    data = _scene_set(seed=seed)
    ours = coco_eval(*data, CLASSES, backend="faster_coco_eval")
    ref = coco_eval(*data, CLASSES, backend="pycocotools")
    assert 0.05 < ref["map50"] < 0.95  # a non-trivial case
    for key in STATS:
        assert abs(ours[key] - ref[key]) < 1e-4, (key, ours[key], ref[key])
    for a, b in zip(ours["per_class"], ref["per_class"]):
        assert abs(a["ap"] - b["ap"]) < 1e-4 and abs(a["ap50"] - b["ap50"]) < 1e-4
    assert len(ours["pr_curves"]["precision"]) == 3 and len(ours["pr_curves"]["recall"]) == 101


def test_perfect_and_empty_predictions():
    gt_b, gt_l, *_ = _scene_set(10)
    perfect = coco_eval(gt_b, gt_l, gt_b, [torch.ones(len(b)) for b in gt_b], gt_l, CLASSES)
    assert perfect["map"] == pytest.approx(1.0) and perfect["map50"] == pytest.approx(1.0)
    none = coco_eval(gt_b, gt_l, [torch.zeros(0, 4)] * 10, [torch.zeros(0)] * 10,
                     [torch.zeros(0, dtype=torch.long)] * 10, CLASSES)
    assert none["map"] == 0.0 and none["detections"] == 0


def test_course_formula_on_a_hand_example():
    # One image, two objects of one class; three detections ranked 0.9 (hit), 0.8 (miss), 0.7 (hit).
    # Precision/recall after each: (1, 0.5), (0.5, 0.5), (0.67, 1). COCO's 101-point interpolated AP at IoU 0.5:
    # precision envelope 1.0 for recall <= 0.5 (51 points), 2/3 for recall in (0.5, 1] (50 points).
    gt = [torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60]])]
    pred = [torch.tensor([[0.0, 0, 10, 10], [100, 100, 110, 110], [50, 50, 60, 60]])]
    r = coco_eval(gt, [torch.tensor([0, 0])], pred, [torch.tensor([0.9, 0.8, 0.7])], [torch.tensor([0, 0, 0])],
                  ["item"], backend="pycocotools")
    assert r["map50"] == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101, abs=1e-6)
    assert coco_eval(gt, [torch.tensor([0, 0])], pred, [torch.tensor([0.9, 0.8, 0.7])], [torch.tensor([0, 0, 0])],
                     ["item"])["map50"] == pytest.approx(r["map50"], abs=1e-6)
