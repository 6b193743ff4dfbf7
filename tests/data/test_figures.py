"""Articulated figures: forward kinematics by hand, joint limits, visibility, determinism, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run
from dcvkit.data.figures import LIMITS, Pose, forward_kinematics, random_pose
from dcvkit.data.keypoints import COCO17


def test_forward_kinematics_of_a_hand_posed_figure():
    """Height 100, pelvis at (50, 100), standing straight, arms and legs hanging: torso 30 up, neck 10 more to
    the nose; shoulders 11 and hips 7 to each side (the figure's left on the image's right); upper arm 17,
    forearm 15, thigh 24, shin 23 straight down."""
    k = dict(zip(COCO17, forward_kinematics(Pose(50, 100, 100))))
    np.testing.assert_allclose(k["nose"], [50, 60])
    np.testing.assert_allclose(k["left_shoulder"], [61, 70])
    np.testing.assert_allclose(k["right_shoulder"], [39, 70])
    np.testing.assert_allclose(k["left_elbow"], [61, 87])
    np.testing.assert_allclose(k["left_wrist"], [61, 102])
    np.testing.assert_allclose(k["right_hip"], [43, 100])
    np.testing.assert_allclose(k["left_knee"], [57, 124])
    np.testing.assert_allclose(k["left_ankle"], [57, 147])
    assert k["left_eye"][0] > 50 > k["right_eye"][0] and k["left_eye"][1] < 60  # eyes above the nose


def test_forward_kinematics_turns_joints():
    """The left arm raised to the horizontal (shoulder 90 degrees) and the forearm bent up by 90 degrees."""
    k = dict(zip(COCO17, forward_kinematics(Pose(50, 100, 100, shoulder=(np.pi / 2, 0), elbow=(np.pi / 2, 0)))))
    np.testing.assert_allclose(k["left_elbow"], [61 + 17, 70], atol=1e-9)
    np.testing.assert_allclose(k["left_wrist"], [78, 70 + 15], atol=1e-9)  # forearm back down: shoulder - elbow = 0
    k = dict(zip(COCO17, forward_kinematics(Pose(50, 100, 100, lean=np.pi / 2))))  # lying on its right side
    np.testing.assert_allclose(k["nose"], [50 + 40, 100], atol=1e-9)


def test_random_poses_stay_within_the_limits():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = random_pose(rng, 128, (56, 112))
        assert LIMITS["lean"][0] <= p.lean <= LIMITS["lean"][1]
        for name in ("shoulder", "elbow", "hip", "knee"):
            assert all(LIMITS[name][0] <= a <= LIMITS[name][1] for a in getattr(p, name))


@pytest.mark.data
def test_figure_images_visibility_and_determinism(fashion_mnist):
    from dcvkit.data import named
    from dcvkit.data.figures import FigureConfig, figure_image

    train, _ = named.load("fashion-mnist")
    a, pa = figure_image(train, FigureConfig(), seed=2, index=5)
    b, pb = figure_image(train, FigureConfig(), seed=2, index=5)
    assert (a == b).all() and np.array_equal(pa.keypoints, pb.keypoints)
    vis = np.concatenate([figure_image(train, FigureConfig(), 0, i)[1].keypoints[..., 2].ravel() for i in range(30)])
    assert {0, 1, 2} <= set(vis.tolist())  # some out of frame, some hidden by another figure, most seen
    assert (vis == 2).mean() > 0.5
    for im in (pa,):
        assert (im.boxes[:, 2] <= 128).all() and (im.areas > 0).all()
        labelled = im.keypoints[..., 2] > 0
        assert ((im.keypoints[..., :2] >= 0) & (im.keypoints[..., :2] < 128))[labelled].all()


@pytest.mark.data
def test_dcv_data_figures_writes_coco_and_yolo_pose(fashion_mnist, capsys, tmp_path):
    from dcvkit.data.keypoints import read_pose

    code, out, err = run(capsys, "data", "figures", "--out", str(tmp_path / "c"), "--n", "6")
    assert code == 0, err
    doc = json.loads((tmp_path / "c" / "annotations.json").read_text())
    cat = doc["categories"][0]
    assert cat["keypoints"] == list(COCO17) and len(cat["skeleton"]) == 19 and len(cat["sigmas"]) == 17
    a = doc["annotations"][0]
    assert len(a["keypoints"]) == 51 and a["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3])
    code, out, err = run(capsys, "data", "figures", "--out", str(tmp_path / "y"), "--n", "6", "--format", "yolo",
                         "--split", "test")
    assert code == 0, err
    y = read_pose(tmp_path / "y" / "data.yaml")
    assert len(y) == 6 and y.images[0].keypoints.shape[1:] == (17, 3)
