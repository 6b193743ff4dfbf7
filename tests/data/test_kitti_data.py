"""KITTI layout and frames: conversions between LiDAR, camera and image, the files' round trips, the simulated
scenes, the stereo point cloud and the one-line errors of bad files."""

from __future__ import annotations

import numpy as np
import pytest

from dcvkit.data.calib import (Calibration, box_corners, camera_to_lidar_boxes, image_boxes, lidar_to_camera_boxes,
                               observation_angle)
from dcvkit.data.kitti import (KittiFolder, Labels, read_calib, read_labels, read_velodyne, write_calib, write_frame,
                               write_labels)
from dcvkit.errors import DataError


def kitti_like_calib() -> Calibration:
    """A real KITTI calibration (training frame 000000): a rectifying rotation and a non-trivial Tr."""
    P2 = np.array([7.215377e02, 0, 6.095593e02, 4.485728e01, 0, 7.215377e02, 1.728540e02, 2.163791e-01, 0, 0, 1,
                   2.745884e-03]).reshape(3, 4)
    R0 = np.array([9.999239e-01, 9.837760e-03, -7.445048e-03, -9.869795e-03, 9.999421e-01, -4.278459e-03,
                   7.402527e-03, 4.351614e-03, 9.999631e-01]).reshape(3, 3)
    Tr = np.array([7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03, 1.480249e-02, 7.280733e-04,
                   -9.998902e-01, -7.631618e-02, 9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01]).reshape(3, 4)
    return Calibration(P2, R0, Tr)


@pytest.mark.parametrize("calib", [Calibration.simulated(), kitti_like_calib()], ids=["simulated", "kitti"])
def test_points_round_trip_lidar_camera_lidar(calib):
    pts = np.random.default_rng(0).uniform([-10, -20, -3], [60, 20, 2], (500, 3))
    assert np.abs(calib.camera_to_lidar(calib.lidar_to_camera(pts)) - pts).max() < 1e-9
    cam = calib.lidar_to_camera(np.array([[10.0, 0, 0]]))  # ahead of the LiDAR: in front of the camera
    assert cam[0, 2] > 9 and abs(cam[0, 0]) < 0.2


@pytest.mark.parametrize("calib", [Calibration.simulated(), kitti_like_calib()], ids=["simulated", "kitti"])
def test_boxes_round_trip_and_projected_corners_lie_in_the_2d_box(calib):
    rng = np.random.default_rng(1)
    n = 50
    boxes = np.column_stack([rng.uniform(5, 40, n), rng.uniform(-8, 8, n), rng.uniform(-1.2, -0.6, n),
                             rng.uniform(3, 4.5, n), rng.uniform(1.4, 1.9, n), rng.uniform(1.3, 1.8, n),
                             rng.uniform(-np.pi, np.pi, n)])
    hwl, bottom, ry = lidar_to_camera_boxes(boxes, calib)
    assert np.allclose(hwl[:, 2], boxes[:, 3]) and np.allclose(hwl[:, 0], boxes[:, 5])  # h w l: the file's order
    back = camera_to_lidar_boxes(hwl, bottom, ry, calib)
    assert np.abs(back - boxes).max() < 1e-9
    bbox, trunc = image_boxes(boxes, calib, (1242, 375))
    uv, _ = calib.lidar_to_image(box_corners(boxes).reshape(-1, 3))
    uv = uv.reshape(n, 8, 2)
    whole = trunc == 0
    assert whole.sum() > 10
    u, v, box = uv[whole, :, 0], uv[whole, :, 1], bbox[whole, None]
    assert (u >= box[..., 0] - 1e-6).all() and (u <= box[..., 2] + 1e-6).all()
    assert (v >= box[..., 1] - 1e-6).all() and (v <= box[..., 3] + 1e-6).all()


def test_a_car_facing_the_camera_has_kitti_angles():
    calib = Calibration.simulated()
    car = np.array([[20.0, 0, -0.9, 4, 1.6, 1.5, np.pi]])  # heading towards the LiDAR
    _, bottom, ry = lidar_to_camera_boxes(car, calib)
    assert np.isclose(ry[0], np.pi / 2)  # KITTI: rotation_y = +pi/2 faces the camera
    assert np.isclose(observation_angle(car)[0], np.pi / 2)
    assert np.isclose(bottom[0, 1], 1.65 - 0.08)  # the bottom 1.65 m below the LiDAR, the camera 0.08 m below it


def test_kitti_files_round_trip(tmp_path):
    from dcvkit.data.lidar_scenes import lidar_frame

    frame = lidar_frame(3, seed=5)
    write_frame(tmp_path, frame, np.zeros((375, 1242, 3), np.uint8))
    folder = KittiFolder.open(tmp_path)
    back = folder.frame(0)
    assert np.array_equal(back.points, frame.points)
    for a, b in ((back.calib.P2, frame.calib.P2), (back.calib.Tr_velo_to_cam, frame.calib.Tr_velo_to_cam)):
        assert np.allclose(a, b, atol=1e-9)
    assert back.labels.names == frame.labels.names and np.array_equal(back.labels.occluded, frame.labels.occluded)
    assert np.abs(back.labels.boxes - frame.labels.boxes).max() < 1e-3  # 4 decimals in the file
    assert np.abs(back.labels.bbox - frame.labels.bbox).max() <= 0.006
    assert back.image is not None and back.image_size == (1242, 375)
    scored = Labels(frame.labels.names, frame.labels.truncated, frame.labels.occluded, frame.labels.alpha,
                    frame.labels.bbox, frame.labels.boxes, np.linspace(0.9, 0.1, len(frame.labels)))
    write_labels(tmp_path / "res.txt", scored, frame.calib)
    assert np.allclose(read_labels(tmp_path / "res.txt", frame.calib).scores, scored.scores, atol=1e-4)


def test_simulated_frames_are_repeatable_and_plausible():
    from dcvkit.data.lidar_scenes import LIDAR_HEIGHT, lidar_frame

    a, b = lidar_frame(7, seed=2), lidar_frame(7, seed=2)
    assert np.array_equal(a.points, b.points) and a.labels.names == b.labels.names
    assert not np.array_equal(a.points[:100], lidar_frame(8, seed=2).points[:100])
    ground = a.points[np.abs(a.points[:, 2] + LIDAR_HEIGHT) < 0.1]
    assert len(ground) > len(a.points) / 3  # most rays reach the ground
    assert set(a.labels.names) <= {"Car", "Pedestrian", "Cyclist"} and len(a.labels) >= 2
    # every labelled object stands on the ground; the rays span the camera's horizontal field of view (+2 deg)
    assert np.allclose(a.labels.boxes[:, 2] - a.labels.boxes[:, 5] / 2, -LIDAR_HEIGHT)
    half_fov = np.degrees(np.arctan(621 / a.calib.P2[0, 0]))
    assert np.degrees(np.abs(np.arctan2(a.points[:, 1], a.points[:, 0]))).max() <= half_fov + 2.01
    # points on an unoccluded car lie inside its box
    car = next(i for i, n in enumerate(a.labels.names) if n == "Car" and a.labels.occluded[i] == 0)
    box = a.labels.boxes[car]
    rel = a.points[:, :2] - box[:2]
    c, s = np.cos(-box[6]), np.sin(-box[6])
    local = np.column_stack([c * rel[:, 0] - s * rel[:, 1], s * rel[:, 0] + c * rel[:, 1]])
    inside = (np.abs(local[:, 0]) < box[3] / 2 + 0.1) & (np.abs(local[:, 1]) < box[4] / 2 + 0.1) & \
        (a.points[:, 2] > -LIDAR_HEIGHT + 0.1)
    assert inside.sum() >= 3


def test_stereo_motorcycle_is_a_real_point_cloud(tmp_path):
    from dcvkit.data.stereo import motorcycle_frame
    from dcvkit.viz.detect3d import draw_points

    frame, left = motorcycle_frame()
    x = frame.points[:, 0]
    assert len(frame.points) > 50_000 and 1.5 < np.median(x) < 4  # the motorcycle stands ~2-3 m from the rig
    assert np.isfinite(frame.points).all()
    assert frame.calib.in_image(frame.points[:, :3], frame.image_size).mean() > 0.99  # back onto its own image
    draw_points(frame.points, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_bad_files_are_one_line_errors_naming_file_and_line(tmp_path):
    bad = tmp_path / "a.bin"
    bad.write_bytes(b"\0" * 20)
    with pytest.raises(DataError, match=r"a\.bin: 20 bytes is not a whole number of points"):
        read_velodyne(bad)
    nan = tmp_path / "n.bin"
    nan.write_bytes(np.array([[1, 2, 3, 0.5], [np.nan, 0, 0, 0]], "<f4").tobytes())
    with pytest.raises(DataError, match=r"n\.bin: point 1 is .*NaN"):
        read_velodyne(nan)
    calib = tmp_path / "c.txt"
    write_calib(calib, Calibration.simulated())
    calib.write_text("\n".join(line for line in calib.read_text().splitlines() if not line.startswith("P2")))
    with pytest.raises(DataError, match=r"c\.txt: no P2 line"):
        read_calib(calib)
    label = tmp_path / "l.txt"
    label.write_text("Car 0 0 0 1 2 3 4 1.5 1.6 3.9 1 1.6 10 0\nCar 0 0 0 1 2 3 4 1.5 1.6 3.9 1 1.6 10\n")
    with pytest.raises(DataError, match=r"l\.txt:2: 14 fields; a KITTI label line has 15"):
        read_labels(label, Calibration.simulated())
    with pytest.raises(DataError, match="no velodyne/ folder"):
        KittiFolder.open(tmp_path)


def test_the_rendered_camera_view_shows_the_labelled_cars():
    from dcvkit.data.lidar_scenes import lidar_frame, render

    frame = lidar_frame(2, seed=1)
    img = render(frame).astype(int)  # the frame's own scene set
    cars = [i for i, n in enumerate(frame.labels.names) if n == "Car" and frame.labels.occluded[i] == 0
            and frame.labels.truncated[i] == 0]
    assert cars
    for i in cars:
        x1, y1, x2, y2 = frame.labels.bbox[i]
        r, g, b = img[int((y1 + y2) / 2), int((x1 + x2) / 2)]
        assert r > g + 40 and r > b + 40  # the cars are painted red
