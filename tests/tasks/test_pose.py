"""End to end: dcv pose train | val | predict on figures and on COCO keypoints / YOLO-pose files (tiny
settings: the outputs are what is tested; the default run's AP is measured in docs/results.md), and bad
pose annotations as one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, run

pytestmark = pytest.mark.data

TINY = ["--figures", "64", "--test-figures", "8", "--epochs", "1", "--batch-size", "8", "--no-progress",
        "--no-tensorboard"]


@pytest.fixture(scope="module")
def pose_run(tmp_path_factory):
    from dcvkit.data import named

    if named.find("fashion-mnist") is None:
        from conftest import missing

        missing("Fashion-MNIST not found (install dataset-fashion-mnist: make setup)")
    from dcvkit.cli.main import main

    root = tmp_path_factory.mktemp("pose")
    assert main(["pose", "train", "--project", str(root), "--name", "p", *TINY]) == 0
    return root / "pose" / "p"


def test_train_writes_a_complete_run(pose_run):
    for f in ("config.yaml", "best.pt", "last.pt", "metrics.csv", "curves.png", "results.json", "predictions.png"):
        assert (pose_run / f).is_file(), f
    r = json.loads((pose_run / "results.json").read_text())
    assert r["images"] == 8 and r["keypoints"] == 17 and 0 <= r["ap"] <= 1 and r["ms_per_image"] > 0
    assert "warning" in r  # a handful of test people: the AP is said to be uncertain
    assert len(r["per_keypoint"]) == 17 and "pck@0.2" in r
    header = (pose_run / "metrics.csv").read_text().splitlines()[0]
    assert "val_ap" in header and "train_kpt_loss" in header


def test_val_on_coco_and_yolo_pose_files(pose_run, capsys, tmp_path):
    for fmt, data in (("coco", "annotations.json"), ("yolo", "data.yaml")):
        code, _, err = run(capsys, "data", "figures", "--out", str(tmp_path / fmt), "--n", "4", "--split", "test",
                           "--format", fmt)
        assert code == 0, err
        code, out, err = run(capsys, "pose", "val", str(pose_run), "--data", str(tmp_path / fmt / data), "--split",
                             "train", "--out", str(tmp_path / f"val_{fmt}"))
        assert code == 0, err
        r = json.loads((tmp_path / f"val_{fmt}" / "results.json").read_text())
        assert r["images"] == 4 and "OKS AP" in out


def test_predict_an_image_of_another_size(pose_run, capsys, tmp_path):
    from dcvkit.data import named
    from dcvkit.data.figures import figure_image

    im, _ = figure_image(named.load("fashion-mnist")[1], seed=3, index=0)
    Image.fromarray(im).resize((200, 150)).save(tmp_path / "wide.png")
    code, out, err = run(capsys, "pose", "predict", str(pose_run), str(tmp_path / "wide.png"), "--out",
                         str(tmp_path / "out"), "--score-thresh", "0.0")
    assert code == 0, err
    rows = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert rows and all(len(r["keypoints"]) == 51 for r in rows)
    k = np.array(rows[0]["keypoints"]).reshape(17, 3)
    assert (k[:, 0] > -50).all() and (k[:, 0] < 250).all()  # in the 200-pixel-wide image's own pixels
    assert Image.open(tmp_path / "out" / "wide_pose.png").size[0] >= 200


def test_bad_pose_annotations_are_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "data", "figures", "--out", str(tmp_path / "c"), "--n", "3")
    assert code == 0, err
    path = tmp_path / "c" / "annotations.json"
    doc = json.loads(path.read_text())
    doc["annotations"][1]["keypoints"] = doc["annotations"][1]["keypoints"][:-3]
    path.write_text(json.dumps(doc))
    code, _, err = run(capsys, "pose", "train", "--data", str(path), "--epochs", "1", "--no-progress")
    assert_one_line_error(code, err, "annotations.json", "annotation 2", "keypoints has 48 numbers")
    doc["annotations"][1]["keypoints"] += [1, 1, 1]
    doc["categories"][0]["flip_idx"] = list(range(17))
    path.write_text(json.dumps(doc))
    code, _, err = run(capsys, "pose", "train", "--data", str(path), "--epochs", "1", "--no-progress")
    assert_one_line_error(code, err, "annotations.json", "flip_idx maps left_eye to left_eye")


@pytest.fixture(scope="module")
def heatmap_run(pose_run):
    from dcvkit.cli.main import main

    root = pose_run.parent.parent
    assert main(["pose", "train", "--project", str(root), "--name", "h", "--model", "heatmap", *TINY]) == 0
    return root / "pose" / "h"


def test_heatmap_is_scored_in_true_boxes_or_in_another_runs_people(heatmap_run, pose_run, capsys, tmp_path):
    r = json.loads((heatmap_run / "results.json").read_text())
    assert r["boxes"] == "gt" and r["predictions"] <= r["objects"]  # at most one estimate per true person
    code, out, err = run(capsys, "pose", "val", str(heatmap_run), "--boxes", str(pose_run), "--out", str(tmp_path))
    assert code == 0, err
    r2 = json.loads((tmp_path / "results.json").read_text())
    assert r2["boxes"] == str(pose_run) and "boxes: " in out
    code, _, err = run(capsys, "pose", "val", str(pose_run), "--boxes", str(heatmap_run))
    assert_one_line_error(code, err, "finds its own people")
    code, _, err = run(capsys, "pose", "val", str(heatmap_run), "--boxes", str(heatmap_run))
    assert_one_line_error(code, err, "top-down too")
    code, _, err = run(capsys, "pose", "val", str(heatmap_run), "--boxes", str(tmp_path / "nowhere"))
    assert_one_line_error(code, err, "neither 'gt' nor a pose run directory")


def test_bench_pose_puts_the_three_models_side_by_side(pose_run, heatmap_run, capsys, tmp_path):
    code, out, err = run(capsys, "bench", "pose", "--project", str(tmp_path), "--runs",
                         f"yolo_pose={pose_run},heatmap={heatmap_run}", "--figures", "48", "--test-figures", "6",
                         "--epochs", "1", "--timing-images", "4", "--block", "2", "--no-progress")
    assert code == 0, err
    r = json.loads((tmp_path / "bench" / "pose" / "exp" / "bench.json").read_text())
    rows = {(x["model"], x["boxes"]): x for x in r["rows"]}
    assert set(rows) == {("yolo_pose", "own"), ("heatmap", "true boxes"), ("heatmap", "yolo_pose's"),
                         ("keypoint_rcnn", "own")}
    assert all(0 <= x["ap"] <= 1 and x["ms_per_image"] > 0 and x["params"] > 0 for x in rows.values())
    pipeline = rows[("heatmap", "yolo_pose's")]["ms_per_image"]
    assert pipeline > rows[("heatmap", "true boxes")]["ms_per_image"]  # the finder's time is counted
    assert any(v.startswith("fastest: ") for v in r["verdicts"]) and "OKS AP" in out
    for f in ("table.md", "ap_vs_ms.png", "keypoint_rcnn/best.pt"):
        assert (tmp_path / "bench" / "pose" / "exp" / f).is_file(), f


def test_boxes_for_a_model_that_finds_its_own_people_is_refused_before_training(capsys, tmp_path):
    code, _, err = run(capsys, "pose", "train", "--boxes", str(tmp_path), "--project", str(tmp_path), *TINY)
    assert_one_line_error(code, err, "yolo_pose finds its own people")
    code, _, err = run(capsys, "pose", "train", "--model", "heatmap", "--boxes", str(tmp_path), "--project",
                       str(tmp_path), *TINY)
    assert_one_line_error(code, err, "neither 'gt' nor a pose run directory")
    assert not (tmp_path / "pose").exists() or not any((tmp_path / "pose").rglob("best.pt"))
