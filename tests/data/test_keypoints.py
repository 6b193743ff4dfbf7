"""Keypoint sets and pose formats: COCO person_keypoints and YOLO-pose round trips, the flip that swaps left
and right, and the one-line errors for what would silently ruin training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dcvkit.data.keypoints import (COCO17, COCO17_FLIP, COCO17_SCHEMA, KeypointSchema, PoseAnnotations, PoseImage,
                                   flip_keypoints, matched_flip, read_coco, read_pose, write_coco, write_yolo)
from dcvkit.errors import DataError


def dataset(tmp_path, k: int = 17, schema: KeypointSchema = COCO17_SCHEMA) -> PoseAnnotations:
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir(exist_ok=True)
    ann = PoseAnnotations(tmp_path, schema)
    for i in range(3):
        Image.new("RGB", (64, 48)).save(tmp_path / "images" / f"{i}.png")
        kp = np.concatenate([rng.uniform(5, 40, (2, k, 2)), rng.integers(0, 3, (2, k, 1))], 2).round(2)
        kp[kp[..., 2] == 0] = 0
        ann.images.append(PoseImage(f"images/{i}.png", 64, 48, np.array([[1, 2, 41, 42], [3, 4, 30, 40.5]]), kp,
                                    np.array([900.0, 700.0])))
    return ann


def test_coco_and_yolo_round_trips(tmp_path):
    ann = dataset(tmp_path)
    back = read_coco(write_coco(ann, tmp_path / "annotations.json"))
    assert back.schema == COCO17_SCHEMA
    for a, b in zip(ann.images, back.images):
        np.testing.assert_allclose(a.keypoints, b.keypoints)
        np.testing.assert_allclose(a.boxes, b.boxes)
        np.testing.assert_allclose(a.areas, b.areas)
    y = read_pose(write_yolo(ann, tmp_path))
    assert y.schema == COCO17_SCHEMA and [im.file for im in y.images] == [im.file for im in ann.images]
    for a, b in zip(ann.images, y.images):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-4)  # 6 decimals of the image size
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)


def test_flip_mirrors_and_swaps_left_and_right():
    k = np.zeros((1, 17, 3))
    k[0, :, 0] = np.arange(17) + 10.0  # keypoint j at x = 10 + j
    k[0, :, 1] = 5.0
    k[0, :, 2] = 2
    k[0, 16, 2] = 0  # an unlabelled keypoint stays unlabelled
    f = flip_keypoints(k, 100, COCO17_FLIP)
    assert f[0, 0, 0] == 100 - 10  # the nose stays the nose
    assert f[0, COCO17.index("left_wrist"), 0] == 100 - (10 + COCO17.index("right_wrist"))  # the right wrist's mirror
    assert f[0, COCO17.index("left_ankle"), 2] == 0 and f[0, COCO17.index("right_ankle"), 2] == 2
    np.testing.assert_allclose(flip_keypoints(f, 100, COCO17_FLIP), k)  # twice: back where it was
    assert matched_flip(COCO17) == COCO17_FLIP


@pytest.mark.parametrize("flip, fragment", [(list(range(16)) + [15], "not a permutation"),
                                            (list(range(17)), "a horizontal flip turns left_eye into right_eye"),
                                            ([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 15, 16],
                                             "left_ankle")])
def test_a_wrong_flip_index_is_caught(tmp_path, flip, fragment):
    doc = json.loads(write_coco(dataset(tmp_path), tmp_path / "a.json").read_text())
    doc["categories"][0]["flip_idx"] = flip
    (tmp_path / "a.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=fragment) as e:
        read_coco(tmp_path / "a.json")
    assert "a.json" in str(e.value)


def _broken(tmp_path, change):
    doc = json.loads(write_coco(dataset(tmp_path), tmp_path / "a.json").read_text())
    change(doc)
    (tmp_path / "a.json").write_text(json.dumps(doc))
    return tmp_path / "a.json"


def test_keypoints_of_the_wrong_length(tmp_path):
    p = _broken(tmp_path, lambda d: d["annotations"][2]["keypoints"].pop())
    with pytest.raises(DataError, match="annotation 3: keypoints has 50 numbers; 17 keypoints need 51"):
        read_coco(p)


def test_visibility_outside_0_to_2(tmp_path):
    def change(d):
        d["annotations"][0]["keypoints"][3 * 4 + 2] = 3
    with pytest.raises(DataError, match="annotation 1: keypoint 5 has visibility 3"):
        read_coco(_broken(tmp_path, change))


def test_skeleton_edge_naming_a_missing_keypoint(tmp_path):
    def change(d):
        d["categories"][0]["skeleton"].append([16, 18])
    with pytest.raises(DataError, match=r"skeleton edge \[16, 18\] names a keypoint that does not exist"):
        read_coco(_broken(tmp_path, change))


def test_a_set_of_five_keypoints_with_its_own_sigmas_or_a_warning(tmp_path):
    names = ("head", "left_hand", "right_hand", "left_foot", "right_foot")
    schema = KeypointSchema(names, ((0, 1), (0, 2)), matched_flip(names), (0.03, 0.05, 0.05, 0.07, 0.07)).check("t")
    assert schema.flip_idx == (0, 2, 1, 4, 3)
    ann = dataset(tmp_path, 5, schema)
    assert read_coco(write_coco(ann, tmp_path / "five.json")).schema == schema

    def no_sigmas(d):
        del d["categories"][0]["sigmas"]
        del d["categories"][0]["flip_idx"]
        d["categories"][0]["keypoints"] = list(names)
    doc = json.loads((tmp_path / "five.json").read_text())
    no_sigmas(doc)
    (tmp_path / "five.json").write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="no OKS sigmas for these 5 keypoints; using 0.0625"):
        s = read_coco(tmp_path / "five.json").schema
    assert s.sigmas == (0.0625,) * 5 and s.flip_idx == (0, 2, 1, 4, 3)


def test_yolo_pose_line_of_the_wrong_length(tmp_path):
    write_yolo(dataset(tmp_path), tmp_path)
    lp = tmp_path / "labels" / "1.txt"
    lines = lp.read_text().splitlines()
    lp.write_text(lines[0] + " 0.5\n")
    with pytest.raises(DataError, match=r"1.txt:1: 57 numbers; 'class cx cy w h' and 17 keypoints of 3 need 56"):
        read_pose(tmp_path / "data.yaml")
