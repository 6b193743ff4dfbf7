"""Golden tests of the detection parts: RoI pooling (the course's 4x6 -> 3x3 example), box IoU, NMS and the
post-processor, box encoding, region sampling, crop warping, sliding windows."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import box_iou

from dcvkit.models.detect.box_coder import decode, encode
from dcvkit.models.detect.postprocess import PostProcess
from dcvkit.models.detect.proposals import SlidingWindows, recall
from dcvkit.models.detect.roi import RoIPool, warp_crops
from dcvkit.models.detect.targets import RoISampler, match

# The course's example: a region of 4 rows x 6 columns of a feature map, pooled to 3 x 3. Columns split
# evenly into pairs; rows into floor/ceil bins of 4/3: rows {0, 1}, {1, 2}, {2, 3} (Fast R-CNN's rule).
REGION = torch.tensor([[1., 7, 2, 9, 4, 0],
                       [5, 3, 8, 1, 6, 2],
                       [0, 4, 6, 3, 9, 5],
                       [2, 8, 1, 7, 3, 4]])
POOLED = torch.tensor([[7., 9, 6],    # rows 0-1: max of cols 0-1, 2-3, 4-5
                       [5, 8, 9],     # rows 1-2
                       [8, 7, 9]])    # rows 2-3


def test_roi_pool_course_example_4x6_to_3x3():
    fmap = torch.full((1, 1, 7, 10), -100.0)
    fmap[0, 0, 1:5, 2:8] = REGION                     # the region sits at rows 1-4, columns 2-7
    box = torch.tensor([[2.0, 1.0, 8.0, 5.0]])       # x1 y1 x2 y2 pixel edges of that region
    out = RoIPool(3, spatial_scale=1.0, kind="pool")(fmap, [box])
    assert out.shape == (1, 1, 3, 3)
    assert torch.equal(out[0, 0], POOLED)


def test_roi_pool_per_image_boxes_and_align_option():
    fmap = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    boxes = [torch.tensor([[0.0, 0, 8, 8], [2, 2, 6, 6]]), torch.tensor([[0.0, 0, 4, 4]])]
    pooled = RoIPool(2, 1.0, "pool")(fmap, boxes)
    assert pooled.shape == (3, 3, 2, 2)
    assert torch.equal(pooled[2], fmap[1, :, 1:4:2, 1:4:2])  # second image's 4x4 corner: max of each 2x2 bin
    aligned = RoIPool(2, 1.0, "align")(fmap, boxes)
    # RoI Align on a linear ramp: each bin's bilinear samples average to the bin centre's value.
    assert torch.allclose(aligned[0, 0], fmap[0, 0, 1:8:4, 1:8:4] + torch.tensor([[4.5, 4.5], [4.5, 4.5]]))


def test_warp_crops_of_a_pixel_aligned_box_are_the_pixels():
    img = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8)
    crop = warp_crops(img, [torch.tensor([[2.0, 3.0, 6.0, 7.0]])], 4)
    assert torch.allclose(crop[0, 0], img[0, 0, 3:7, 2:6])


def test_box_iou_golden():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 5, 15, 15], [0, 0, 10, 10], [10, 0, 20, 10], [0, 0, 5, 10]])
    assert torch.allclose(box_iou(a, b), torch.tensor([[25 / 175, 1.0, 0.0, 0.5]]))


def test_postprocess_threshold_per_class_nms_top_k():
    # Four regions, two classes; scores (K, C). A and B overlap with IoU 81/119 = 0.68.
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]])
    scores = torch.tensor([[0.9, 0.0], [0.8, 0.0], [0.7, 0.01], [0.0, 0.6]])
    d = PostProcess(score_thresh=0.05, nms_iou=0.5, top_k=100)(boxes, scores, (40, 40))
    assert d.scores.tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert d.labels.tolist() == [0, 0, 1]                  # B suppressed by A; D kept: another class
    assert torch.equal(d.boxes, boxes[[0, 2, 3]])
    assert len(PostProcess(0.05, 0.5, top_k=2)(boxes, scores, (40, 40))) == 2
    kept = PostProcess(0.05, nms_iou=0.7)(boxes, scores, (40, 40))  # IoU 0.68 < 0.7: B survives
    assert kept.scores.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6])
    clipped = PostProcess(0.05)(torch.tensor([[-5.0, -5, 50, 8]]), torch.tensor([[0.5]]), (40, 40))
    assert clipped.boxes.tolist() == [[0.0, 0.0, 40.0, 8.0]]


def test_box_encoding_golden_and_inverse():
    p = torch.tensor([[0.0, 0, 10, 20]])       # centre (5, 10), size 10 x 20
    g = torch.tensor([[2.0, 4, 12, 30]])       # centre (7, 17), size 10 x 26
    d = encode(p, g)
    assert torch.allclose(d, torch.tensor([[10 * 2 / 10, 10 * 7 / 20, 0.0, 5 * math.log(26 / 20)]]))
    assert torch.allclose(decode(d, p), g, atol=1e-5)
    rng = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=rng) * 100
    props = torch.cat([xy, xy + 5 + torch.rand(50, 2, generator=rng) * 50], 1)
    gts = props + torch.randn(50, 4, generator=rng)
    assert torch.allclose(decode(encode(props, gts), props), gts, atol=1e-3)
    assert torch.isfinite(decode(torch.full((1, 4), 1e4), p)).all()   # wild deltas are clamped, not inf


def test_match_and_sampler():
    gt = torch.tensor([[10.0, 10, 40, 40], [60, 60, 100, 100]])
    labels = torch.tensor([3, 7])
    props = torch.tensor([[10.0, 10, 40, 41], [0, 0, 5, 5], [12, 12, 44, 44], [60, 60, 80, 80], [90, 0, 120, 20]])
    y, idx = match(props, gt, labels, 0.5, 0.5)
    assert y.tolist() == [4, 0, 4, 0, 0] and idx[[0, 2]].tolist() == [0, 0]
    assert match(props, gt, labels, 0.5, 0.2)[0].tolist() == [4, 0, 4, -1, 0]   # IoU 0.25: ignored
    torch.manual_seed(0)
    rois, roi_labels, targets = RoISampler(per_image=4, fg_fraction=0.5)(props, gt, labels)
    assert len(rois) == 4 and int((roi_labels > 0).sum()) == 2
    fg = roi_labels > 0
    decoded = decode(targets[fg], rois[fg])
    assert all(((decoded[i] - gt).abs().sum(1) < 1e-3).any() for i in range(len(decoded)))  # targets lead to a GT box
    assert torch.equal(targets[~fg], torch.zeros_like(targets[~fg]))
    empty = RoISampler(per_image=8)(props, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert (empty[1] == 0).all() and len(empty[0]) == 5       # an image without objects: background only


def test_sliding_windows_pyramid():
    w = SlidingWindows(sizes=(32,), ratios=(1.0, 4.0), stride=32).boxes(128, 128)
    square, wide = w[:16], w[16:]
    assert square[0].tolist() == [0, 0, 32, 32] and square[-1].tolist() == [96, 96, 128, 128]
    assert (wide[:, 2] - wide[:, 0] == 64).all() and (wide[:, 3] - wide[:, 1] == 16).all()
    assert len(wide) == 3 * 4                                  # 64 wide: 3 positions across, 16 high: 4 down
    gt = [torch.tensor([[0.0, 0, 32, 32], [5, 5, 20, 20]])]
    assert recall(gt, [w], 0.5) == 0.5


