"""Rotated-box IoU against shapely, IoUs worked out on paper, and KITTI's AP (ground truth as detections: 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dcvkit.metrics.box3d import bev_corners, bev_iou, iou_3d, rotated_nms
from dcvkit.metrics.kitti import FrameObjects, kitti_ap


def _shapely_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    from shapely.geometry import Polygon

    pa, pb = Polygon(bev_corners(a[None])[0].numpy()), Polygon(bev_corners(b[None])[0].numpy())
    return pa.intersection(pb).area / pa.union(pb).area


def test_bev_iou_equals_shapely_on_random_and_special_cases():
    g = torch.Generator().manual_seed(0)
    n = 300
    a = torch.cat([torch.rand(n, 2, generator=g, dtype=torch.float64) * 4,
                   0.3 + torch.rand(n, 2, generator=g, dtype=torch.float64) * 4,
                   (torch.rand(n, 1, generator=g, dtype=torch.float64) - 0.5) * 2 * math.pi], 1)
    b = a + torch.randn(n, 5, generator=g, dtype=torch.float64) * torch.tensor([0.5, 0.5, 0.3, 0.3, 0.5],
                                                                                dtype=torch.float64)
    b[:, 2:4] = b[:, 2:4].abs() + 0.1
    special = [
        (a[0], a[0]),                                                         # identical
        (a[1], a[1] + torch.tensor([100.0, 0, 0, 0, 0], dtype=torch.float64)),  # disjoint
        (a[2], torch.cat([a[2][:2], a[2][2:4] / 3, a[2][4:]])),               # contained
        (a[3], torch.cat([a[3][:4], a[3][4:] + math.pi / 2])),                # turned 90 degrees
        (a[4], torch.cat([a[4][:4], a[4][4:] + 1e-7])),                       # near-parallel
        (a[5], torch.cat([a[5][:1] + a[5][2:3], a[5][1:]])),                  # touching along an edge
    ]
    a = torch.cat([a, torch.stack([s[0] for s in special])])
    b = torch.cat([b, torch.stack([s[1] for s in special])])
    ours = bev_iou(a, b, aligned=True).numpy()
    ref = np.array([_shapely_iou(x, y) for x, y in zip(a, b)])
    assert np.abs(ours - ref).max() < 1e-6
    assert ours[-6] == pytest.approx(1.0, abs=1e-9) and ours[-5] == 0
    # the (N, M) form is the paired form on every pair
    full = bev_iou(a[:7], b[:5])
    assert full.shape == (7, 5)
    assert torch.allclose(full[3, 2], bev_iou(a[3:4], b[2:3], aligned=True)[0])


def test_shifted_boxes_give_the_iou_on_paper():
    car = torch.tensor([[10.0, 2.0, -0.9, 4.0, 2.0, 1.5, 0.7]], dtype=torch.float64)
    yaw = 0.7
    along = car.clone()
    along[0, 0] += math.cos(yaw) * 1.0  # 1 m along its length: overlap 3 x 2 of 4 x 2 each
    along[0, 1] += math.sin(yaw) * 1.0
    assert bev_iou(car, along)[0, 0].item() == pytest.approx(6 / 10, abs=1e-9)
    assert iou_3d(car, along)[0, 0].item() == pytest.approx(6 / 10, abs=1e-9)
    up = car.clone()
    up[0, 2] += 0.5  # half a metre up: height overlap 1.0 of 1.5
    assert bev_iou(car, up)[0, 0].item() == pytest.approx(1.0)
    assert iou_3d(car, up)[0, 0].item() == pytest.approx(8 / (12 + 12 - 8), abs=1e-9)
    turned = car.clone()
    turned[0, 3:5] = 2.0
    turned2 = turned.clone()
    turned2[0, 6] += math.pi / 4  # a 2 x 2 square and itself turned 45 degrees: an octagon of area 8 (sqrt 2 - 1)
    octagon = 8 * (math.sqrt(2) - 1)
    assert bev_iou(turned, turned2)[0, 0].item() == pytest.approx(octagon / (8 - octagon), abs=1e-9)


def test_rotated_nms_keeps_the_best_of_overlapping_boxes():
    boxes = torch.tensor([[0, 0, 0, 4, 2, 1.5, 0.1], [0.2, 0, 0, 4, 2, 1.5, 0.15], [10, 0, 0, 4, 2, 1.5, 0]])
    keep = rotated_nms(boxes, torch.tensor([0.5, 0.9, 0.3]), 0.3)
    assert keep.tolist() == [1, 2]


def _frame(rng, n: int) -> FrameObjects:
    boxes = np.column_stack([rng.uniform(5, 30, n), rng.uniform(-10, 10, n), np.full(n, -0.9), rng.uniform(3.5, 4.5, n),
                             np.full(n, 1.6), np.full(n, 1.5), rng.uniform(-3, 3, n)])
    boxes[:, 0] += np.arange(n) * 40  # never overlapping
    top, left = rng.uniform(150, 200, n), np.arange(n) * 240.0  # side by side in the image too
    bbox = np.column_stack([left, top, left + rng.uniform(20, 200, n), top + rng.uniform(30, 120, n)])
    names = list(rng.choice(["Car", "Pedestrian", "Cyclist", "Van"], n))
    return FrameObjects(names, bbox, boxes, rng.uniform(-3, 3, n), rng.integers(0, 3, n) // 2, rng.uniform(0, 0.3, n))


def test_ground_truth_as_detections_scores_one_everywhere():
    rng = np.random.default_rng(0)
    truths = [_frame(rng, int(rng.integers(1, 6))) for _ in range(400)]  # >= 40 objects per class and difficulty:
    dets = [FrameObjects(t.names, t.bbox, t.boxes, t.alpha, scores=rng.uniform(0.1, 1, len(t.names))) for t in truths]
    ap = kitti_ap(truths, dets, ["Car", "Pedestrian", "Cyclist"])
    values = [e[k] for m in ap.values() for c in m.values() for e in c.values()
              for k in ("AP_R40", "AP_R11", "AOS_R40", "AOS_R11") if k in e and e["AP_R40"] is not None]
    assert len(values) == 3 * 3 * 3 * 2 + 3 * 3 * 2 and all(v == pytest.approx(1.0) for v in values)


def test_few_objects_cap_the_ap_as_kittis_sampling_does():
    # KITTI samples a score threshold per recall step of 1/40 *that a hit reaches*: with 2 objects, 2 thresholds
    # (recall 0 and 1/40 in its table), so a perfect detector scores 1 / 40 in AP|R40, which skips recall 0, and
    # 1 / 11 in AP|R11 (the devkit's behaviour, kept; the task warns below 50 objects)
    t = FrameObjects(["Car", "Car"], np.array([[0, 100, 100, 200], [300, 100, 400, 200.0]]),
                     np.array([[10, 0, -0.9, 4, 1.6, 1.5, 0], [20, 5, -0.9, 4, 1.6, 1.5, 1]], float), np.zeros(2),
                     np.zeros(2, int), np.zeros(2))
    d = FrameObjects(t.names, t.bbox, t.boxes, t.alpha, scores=np.array([0.9, 0.8]))
    e = kitti_ap([t], [d], ["Car"], metrics=("3d",))["3d"]["Car"]["moderate"]
    assert e["AP_R40"] == pytest.approx(1 / 40) and e["AP_R11"] == pytest.approx(1 / 11)


def test_ap_falls_with_misses_false_positives_and_wrong_headings():
    truths = [FrameObjects(["Car"] * 2, np.array([[0, 100, 100, 200], [300, 100, 400, 200.0]]),
                           np.array([[10, 0, -0.9, 4, 1.6, 1.5, 0], [20, 5, -0.9, 4, 1.6, 1.5, 1]], float),
                           np.zeros(2), np.zeros(2, int), np.zeros(2)) for _ in range(50)]
    half = [FrameObjects(["Car"], t.bbox[:1], t.boxes[:1], t.alpha[:1], scores=np.linspace(1, 0.5, 50)[k:k + 1])
            for k, t in enumerate(truths)]
    ap = kitti_ap(truths, half, ["Car"])
    assert ap["3d"]["Car"]["moderate"]["AP_R40"] == pytest.approx(20 / 40)  # precision 1 up to recall 0.5
    scores = [np.array([1 - k / 100, 0.5 - k / 100]) for k in range(50)]
    flipped = [FrameObjects(t.names, t.bbox, t.boxes, t.alpha + np.pi, scores=s) for t, s in zip(truths, scores)]
    ap = kitti_ap(truths, flipped, ["Car"], metrics=("bbox",))
    assert ap["bbox"]["Car"]["moderate"]["AP_R40"] == pytest.approx(1.0)
    assert ap["bbox"]["Car"]["moderate"]["AOS_R40"] == pytest.approx(0.0, abs=1e-9)  # facing the other way
    shifted = [FrameObjects(t.names, t.bbox, t.boxes + np.array([0.8, 0, 0, 0, 0, 0, 0]), t.alpha, scores=s)
               for t, s in zip(truths, scores)]  # IoU (3.2 / 4.8) = 0.667 < 0.7: no hit for a car
    ap = kitti_ap(truths, shifted, ["Car"], metrics=("3d",))
    assert ap["3d"]["Car"]["moderate"]["AP_R40"] == 0
