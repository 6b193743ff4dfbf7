"""The pose models: their outputs, the heatmap geometry (crops, targets, sub-pixel decoding), and that each
learns keypoints (overfitting four figure images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcvkit.data.keypoints import COCO17, COCO17_SIGMAS
from dcvkit.models import create_model, list_models


def test_yolo_pose_outputs():
    assert list_models("pose") == ["heatmap", "keypoint_rcnn", "yolo_pose"]
    m = create_model("yolo_pose", num_keypoints=5, sigmas=[0.05] * 5).eval()
    x = torch.rand(2, 3, 128, 96)
    assert m(x).shape == (2, 5 + 1 + 15, 16, 12)
    d = m.detect_pose(x, score_thresh=0.0, top_k=7)
    assert len(d) == 2 and d[0].keypoints.shape == (7, 5, 3) and d[0].boxes.shape == (7, 4)
    assert ((d[0].keypoints[..., 2] >= 0) & (d[0].keypoints[..., 2] <= 1)).all()
    with pytest.raises(ValueError, match="4 sigmas for 5 keypoints"):
        create_model("yolo_pose", num_keypoints=5, sigmas=[0.05] * 4)


def test_yolo_pose_refinement_reads_the_keypoints_neighbourhood():
    torch.manual_seed(0)
    m = create_model("yolo_pose", num_keypoints=5, sigmas=[0.05] * 5).eval()
    x = torch.rand(2, 3, 128, 96)
    grid, fine = m.maps(x)
    assert fine.shape[-2:] == (32, 24) and torch.equal(grid, m(x))
    xy = torch.tensor([[[10.0, 20.0]] * 5, [[50.0, 90.0]] * 5])
    img = torch.tensor([0, 1])
    assert torch.equal(m.refined(fine, img, xy), xy)  # starts as the cell's own keypoints
    torch.nn.init.normal_(m.refine_out[-1].weight)
    fine = fine.detach().requires_grad_(True)
    moved = m.refined(fine, img, xy)
    assert not torch.allclose(moved, xy)
    moved.sum().backward()
    g = fine.grad.abs().sum(1)  # the gradient reaches only the patches (16 px around each keypoint)
    assert g[0, 3:7, 1:5].sum() > 0 and g[1, 20:25, 10:15].sum() > 0
    assert g[0, 12:, :].sum() == 0 and g[1, :15, :].sum() == 0
    assert torch.equal(create_model("yolo_pose", num_keypoints=5, refine=False).refined(None, img, xy), xy)


def test_crops_keep_the_aspect_and_pad():
    from dcvkit.models.pose.heatmap import crop_boxes

    r = crop_boxes(torch.tensor([[10.0, 20.0, 30.0, 100.0], [0.0, 0.0, 90.0, 30.0]]), 0.75, 1.25)
    w, h = r[:, 2] - r[:, 0], r[:, 3] - r[:, 1]
    assert torch.allclose(w / h, torch.tensor(0.75)) and torch.allclose(h[0], torch.tensor(100.0))  # 80 * 1.25
    assert torch.allclose((r[:, :2] + r[:, 2:]) / 2, torch.tensor([[20.0, 60.0], [45.0, 15.0]]))


def test_a_gaussian_target_decodes_to_its_sub_pixel_point():
    from dcvkit.models.pose.heatmap import decode_heatmaps, gaussian_targets

    region = torch.tensor([[8.0, 4.0, 8.0 + 96.0, 4.0 + 128.0]])  # 2 image pixels per heatmap pixel
    kp = torch.tensor([[[30.3, 40.7, 2.0], [20.0, 22.25, 1.0], [50.0, 60.0, 0.0], [500.0, 60.0, 2.0]]])
    t, w = gaussian_targets(kp, region, (64, 48), 1.5)
    assert w.tolist() == [[1.0, 1.0, 0.0, 0.0]]  # not labelled; outside the crop
    assert t.shape == (1, 4, 64, 48) and float(t[0, 0].max()) > 0.9
    got = decode_heatmaps(t, region)
    assert torch.allclose(got[0, :2, :2], kp[0, :2, :2], atol=1e-3)  # exact: a log-Gaussian is quadratic
    u = torch.zeros(1, 1, 64, 48)  # a single hot pixel: no Newton step (flat log), the pixel's centre
    u[0, 0, 10, 20] = 1.0
    assert torch.allclose(decode_heatmaps(u + 1e-12, region)[0, 0, :2], torch.tensor([8 + 41.0, 4 + 21.0]))


def test_the_heatmap_loss_is_zero_at_its_target():
    from dcvkit.losses.pose import heatmap_loss
    from dcvkit.models.pose.heatmap import gaussian_targets

    kp = torch.tensor([[[20.0, 30.0, 2.0], [5.0, 5.0, 2.0]]])
    t, w = gaussian_targets(kp, torch.tensor([[0.0, 0.0, 48.0, 64.0]]), (64, 48), 1.5)
    assert float(heatmap_loss(t.clamp_min(1e-30).log(), t, w)) < 1e-4
    assert float(heatmap_loss(torch.zeros_like(t), t, w)) > 3.0  # uniform: far from it


def test_keypoint_score_weighs_a_box_by_its_shown_keypoints():
    from dcvkit.models.pose.base import keypoint_score

    conf = torch.tensor([[0.9, 0.5, 0.1, 0.0],     # two show (> 0.2): mean 0.7
                         [0.1, 0.1, 0.2, 0.0]])    # none shows: the mean of all four, 0.1
    got = keypoint_score(torch.tensor([0.8, 1.0]), conf)
    assert torch.allclose(got, torch.tensor([0.8 * 0.7, 1.0 * 0.1]))


def test_heatmap_and_keypoint_rcnn_outputs():
    x = torch.rand(2, 3, 128, 96)
    hm = create_model("heatmap", num_keypoints=5).eval()
    boxes = [torch.tensor([[10.0, 10.0, 50.0, 100.0], [40.0, 20.0, 90.0, 120.0]]), torch.zeros(0, 4)]
    d = hm.detect_pose(x, boxes=boxes, box_scores=[torch.tensor([0.9, 0.5]), torch.zeros(0)])
    assert d[0].keypoints.shape == (2, 5, 3) and len(d[1]) == 0 and hm.needs_boxes
    assert (d[0].scores <= torch.tensor([0.9, 0.9])).all() and ((d[0].keypoints[..., 2] >= 0) &
                                                                 (d[0].keypoints[..., 2] <= 1)).all()
    assert hm.detect_pose(x)[0].boxes.tolist() == [[0.0, 0.0, 96.0, 128.0]]  # no boxes: the whole image
    kr = create_model("keypoint_rcnn", num_keypoints=5).eval()
    d = kr.detect_pose(x, score_thresh=0.0, top_k=6)
    assert d[0].keypoints.shape == (6, 5, 3) and not kr.needs_boxes
    assert (d[0].scores[:-1] >= d[0].scores[1:]).all()  # rescored by the keypoints, still best first
    feats, kfeats = kr.features(x)
    assert feats.shape[-2:] == (16, 12) and kfeats.shape[-2:] == (32, 24)  # the keypoint map is stride 4
    logits, rois = kr.keypoint_logits(kfeats, boxes)
    assert logits.shape == (2, 5, 56, 56) and torch.allclose(rois[0][0], torch.tensor([6.0, 1.0, 54.0, 109.0]))
    coarse = create_model("keypoint_rcnn", num_keypoints=5, fine_channels=0).eval()
    assert coarse.kpt_stride == 8 and coarse.features(x)[1].shape[-2:] == (16, 12)


def _figures(n: int):
    from dcvkit.data import named
    from dcvkit.data.figures import figure_image

    train, _ = named.load("fashion-mnist")
    data = [figure_image(train, seed=0, index=i) for i in range(n)]
    x = torch.stack([torch.from_numpy(im).permute(2, 0, 1) for im, _ in data]).float() / 255 - 0.5
    return data, x, [torch.tensor(a.boxes, dtype=torch.float32) for _, a in data], \
        [torch.tensor(a.keypoints, dtype=torch.float32) for _, a in data], \
        [torch.tensor(a.areas, dtype=torch.float32) for _, a in data]


@pytest.mark.data
@pytest.mark.parametrize("name, steps, given, ratio, ap50", [("yolo_pose", 300, False, 0.25, 0.9),
                                                             ("heatmap", 150, True, 0.5, 0.6),
                                                             ("keypoint_rcnn", 150, False, 0.5, 0.6)])
def test_each_model_learns_the_keypoints_of_four_images(fashion_mnist, name, steps, given, ratio, ap50):
    from dcvkit.metrics.pose import keypoint_ap

    torch.manual_seed(0)
    data, x, boxes, kps, areas = _figures(4)
    m = create_model(name)
    opt = torch.optim.AdamW(m.parameters(), 3e-3)
    first = None
    for _ in range(steps):
        out = m.loss(x, boxes, kps, areas)
        first = first if first is not None else {k: float(v.detach()) for k, v in out.items()}
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    last = {k: float(v.detach()) for k, v in out.items()}
    assert last["loss"] < ratio * first["loss"] and np.isfinite(list(last.values())).all(), (first, last)
    d = m.eval().detect_pose(x, 0.05, boxes=boxes if given else None)  # boxes: only the top-down model uses them
    r = keypoint_ap([a.keypoints for _, a in data], [a.boxes for _, a in data], [a.areas for _, a in data],
                    [p.keypoints.numpy() for p in d], [p.scores.numpy() for p in d], COCO17, COCO17_SIGMAS)
    assert r["ap50"] >= ap50, r  # the training images themselves: it fits them
