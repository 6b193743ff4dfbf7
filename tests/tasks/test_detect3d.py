"""End to end: dcv detect3d train | val | predict and dcv data lidar (tiny settings: the outputs and the errors are
what is tested; the default run's AP is measured in docs/results.md)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, run

TINY = ["--frames", "24", "--test-frames", "6", "--epochs", "1", "--batch-size", "8", "--val-frames", "4",
        "--no-progress", "--no-tensorboard"]


@pytest.fixture(scope="module")
def d3_run(tmp_path_factory):
    from dcvkit.cli.main import main

    root = tmp_path_factory.mktemp("d3")
    assert main(["detect3d", "train", "--project", str(root), "--name", "p", *TINY]) == 0
    return root / "detect3d" / "p"


@pytest.fixture(scope="module")
def lidar_dir(tmp_path_factory):
    from dcvkit.cli.main import main

    out = tmp_path_factory.mktemp("lidar") / "frames"
    assert main(["data", "lidar", "--out", str(out), "--n", "4", "--seed", "3"]) == 0
    return out


def test_train_writes_a_complete_run_with_kitti_ap(d3_run):
    for f in ("config.yaml", "best.pt", "last.pt", "metrics.csv", "curves.png", "results.json", "bev.png",
              "camera.png"):
        assert (d3_run / f).is_file(), f
    r = json.loads((d3_run / "results.json").read_text())
    assert r["frames"] == 6 and r["ms_per_frame"] > 0 and set(r["ap"]) == {"bbox", "bev", "3d"}
    for metric in r["ap"].values():
        for cls in ("Car", "Pedestrian", "Cyclist"):
            for e in metric[cls].values():
                assert e["AP_R40"] is None or 0 <= e["AP_R40"] <= 1
    assert "warning" in r and "uncertain" in r["warning"]  # six frames: a handful of objects
    assert "val_ap3d" in (d3_run / "metrics.csv").read_text()


def test_val_on_a_kitti_folder_prints_the_table(d3_run, lidar_dir, capsys, tmp_path):
    code, out, _ = run(capsys, "detect3d", "val", str(d3_run), "--data", str(lidar_dir), "--out", str(tmp_path / "v"))
    assert code == 0 and "4 frames" in out and "moderate R40" in out and "ms per frame" in out
    assert (tmp_path / "v" / "results.json").is_file() and (tmp_path / "v" / "camera.png").is_file()


def test_predict_writes_pictures_and_kitti_results(d3_run, lidar_dir, capsys, tmp_path):
    from dcvkit.data.kitti import read_calib, read_labels

    out_dir = tmp_path / "p"
    code, out, _ = run(capsys, "detect3d", "predict", str(d3_run), str(lidar_dir), "--out", str(out_dir),
                       "--min-score", "0")
    assert code == 0 and "frame 000000" in out
    for i in range(4):
        assert (out_dir / f"{i:06d}_bev.png").is_file() and (out_dir / f"{i:06d}_camera.png").is_file()
        labels = read_labels(out_dir / "label_2" / f"{i:06d}.txt", read_calib(lidar_dir / "calib" / f"{i:06d}.txt"))
        assert labels.scores is None or ((labels.scores >= 0) & (labels.scores <= 1)).all()
    rows = json.loads((out_dir / "detections.json").read_text())
    assert [r["frame"] for r in rows] == ["000000", "000001", "000002", "000003"]


def test_the_stereo_frame_is_read_and_drawn(d3_run, capsys, tmp_path):
    code, out, _ = run(capsys, "data", "lidar", "--stereo", "--out", str(tmp_path / "m"))
    assert code == 0 and "points" in out and (tmp_path / "m" / "points.png").is_file()
    code, out, _ = run(capsys, "detect3d", "predict", str(d3_run), str(tmp_path / "m"), "--out", str(tmp_path / "o"))
    assert code == 0 and (tmp_path / "o" / "000000_bev.png").is_file()


def test_augmentation_moves_points_and_boxes_together():
    from dcvkit.data.lidar_scenes import lidar_frame
    from dcvkit.data.lidar import collate
    from dcvkit.tasks.detect3d import augment

    frames = [lidar_frame(i, 4) for i in range(4)]
    points, counts, boxes, _ = collate(frames, ["Car", "Pedestrian", "Cyclist"])

    def inside(p, b):
        rel = p[:, :2] - b[:2]
        c, s = math.cos(-b[6]), math.sin(-b[6])
        lx, ly = c * rel[:, 0] - s * rel[:, 1], s * rel[:, 0] + c * rel[:, 1]
        return (lx.abs() < b[3] / 2) & (ly.abs() < b[4] / 2) & ((p[:, 2] - b[2]).abs() < b[5] / 2)

    before = [[int(inside(points[i, :counts[i]], b).sum()) for b in boxes[i]] for i in range(4)]
    p2, b2 = augment(points, counts, boxes, torch.Generator().manual_seed(0))
    after = [[int(inside(p2[i, :counts[i]], b).sum()) for b in b2[i]] for i in range(4)]
    assert before == after and sum(map(sum, before)) > 50
    assert not torch.allclose(p2, points)


@pytest.mark.parametrize("damage, message", [
    ("bin", "is not a whole number of points"),
    ("nan", "NaN or infinite"),
    ("fields", "14 fields; a KITTI label line has 15"),
    ("p2", "no P2 line"),
])
def test_bad_kitti_files_are_one_line_errors(d3_run, lidar_dir, capsys, tmp_path, damage, message):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(lidar_dir, bad)
    if damage == "bin":
        with open(bad / "velodyne" / "000001.bin", "ab") as f:
            f.write(b"\0" * 7)
    elif damage == "nan":
        pts = np.fromfile(bad / "velodyne" / "000001.bin", "<f4").reshape(-1, 4)
        pts[5, 0] = np.nan
        pts.tofile(bad / "velodyne" / "000001.bin")
    elif damage == "fields":
        path = bad / "label_2" / "000001.txt"
        lines = path.read_text().splitlines()
        path.write_text("\n".join([lines[0], " ".join(lines[1].split()[:14]), *lines[2:]]) + "\n")
    else:
        path = bad / "calib" / "000001.txt"
        path.write_text("\n".join(line for line in path.read_text().splitlines() if not line.startswith("P2:")))
    code, _, err = run(capsys, "detect3d", "val", str(d3_run), "--data", str(bad))
    where = {"bin": "000001.bin", "nan": "000001.bin: point 5", "fields": "000001.txt:2", "p2": "000001.txt"}[damage]
    assert_one_line_error(code, err, where, message)
