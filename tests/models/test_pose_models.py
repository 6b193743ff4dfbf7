"""yolo_pose: its outputs, and that it learns keypoints (overfitting four figure images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcvkit.data.keypoints import COCO17, COCO17_SIGMAS
from dcvkit.models import create_model, list_models


def test_yolo_pose_outputs():
    assert list_models("pose") == ["yolo_pose"]
    m = create_model("yolo_pose", num_keypoints=5, sigmas=[0.05] * 5).eval()
    x = torch.rand(2, 3, 128, 96)
    assert m(x).shape == (2, 5 + 1 + 15, 16, 12)
    d = m.detect_pose(x, score_thresh=0.0, top_k=7)
    assert len(d) == 2 and d[0].keypoints.shape == (7, 5, 3) and d[0].boxes.shape == (7, 4)
    assert ((d[0].keypoints[..., 2] >= 0) & (d[0].keypoints[..., 2] <= 1)).all()
    with pytest.raises(ValueError, match="4 sigmas for 5 keypoints"):
        create_model("yolo_pose", num_keypoints=5, sigmas=[0.05] * 4)


@pytest.mark.data
def test_yolo_pose_learns_the_keypoints_of_four_images(fashion_mnist):
    from dcvkit.data import named
    from dcvkit.data.figures import figure_image
    from dcvkit.metrics.pose import keypoint_ap

    torch.manual_seed(0)
    train, _ = named.load("fashion-mnist")
    data = [figure_image(train, seed=0, index=i) for i in range(4)]
    x = torch.stack([torch.from_numpy(im).permute(2, 0, 1) for im, _ in data]).float() / 255 - 0.5
    boxes = [torch.tensor(a.boxes, dtype=torch.float32) for _, a in data]
    kps = [torch.tensor(a.keypoints, dtype=torch.float32) for _, a in data]
    areas = [torch.tensor(a.areas, dtype=torch.float32) for _, a in data]
    m = create_model("yolo_pose")
    opt = torch.optim.AdamW(m.parameters(), 3e-3)
    first = None
    for _ in range(300):
        out = m.loss(x, boxes, kps, areas)
        first = first if first is not None else {k: float(v.detach()) for k, v in out.items()}
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    last = {k: float(v.detach()) for k, v in out.items()}
    assert last["kpt_loss"] < 0.35 * first["kpt_loss"] and last["loss"] < 0.25 * first["loss"]
    d = m.eval().detect_pose(x, 0.05)
    r = keypoint_ap([a.keypoints for _, a in data], [a.boxes for _, a in data], [a.areas for _, a in data],
                    [p.keypoints.numpy() for p in d], [p.scores.numpy() for p in d], COCO17, COCO17_SIGMAS)
    assert r["ap50"] >= 0.9 and r["ap"] >= 0.4, r  # the training images themselves: it fits them
    assert np.isfinite(list(last.values())).all()
