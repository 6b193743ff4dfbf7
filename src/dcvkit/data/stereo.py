"""A real point cloud from a calibrated stereo pair: depth = focal x baseline / (disparity + doffs), back-projected
through the left camera, as a KITTI-layout frame (velodyne/, calib/, image_2/; no labels) that every point-cloud
reader and picture of dcvkit takes. scikit-image ships Middlebury 2014's motorcycle pair with its ground-truth
disparity and calibration (:func:`skimage.data.stereo_motorcycle`): the smoke test of real data."""

from __future__ import annotations

import numpy as np

from dcvkit.data.calib import Calibration
from dcvkit.data.kitti import KittiFrame

#: the calibration scikit-image gives for its quarter-size motorcycle pair (pixels; baseline in metres)
MOTORCYCLE = {"focal": 994.978, "cx": 311.193, "cy": 254.877, "doffs": 31.086, "baseline": 0.193001}


def disparity_points(image: np.ndarray, disparity: np.ndarray, focal: float, cx: float, cy: float, doffs: float,
                     baseline: float, step: int = 2) -> tuple[np.ndarray, Calibration]:
    """(N, 4) LiDAR-frame points (x forward, y left, z up; intensity the pixel's grey level) of every ``step``-th
    pixel with a finite disparity, and the calibration that projects them back onto ``image``."""
    h, w = disparity.shape
    v, u = np.mgrid[0:h:step, 0:w:step]
    d = disparity[v, u]
    ok = np.isfinite(d) & (d + doffs > 0)
    u, v, d = u[ok], v[ok], d[ok]
    z = focal * baseline / (d + doffs)
    cam = np.column_stack([(u - cx) * z / focal, (v - cy) * z / focal, z])
    calib = Calibration(np.array([[focal, 0, cx, 0], [0, focal, cy, 0], [0, 0, 1, 0]], np.float64), np.eye(3),
                        np.column_stack([np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], np.float64), np.zeros(3)]))
    grey = image.mean(-1) if image.ndim == 3 else image.astype(np.float64)
    pts = np.column_stack([calib.camera_to_lidar(cam), grey[v, u] / 255.0]).astype(np.float32)
    return pts, calib


def motorcycle_frame() -> tuple[KittiFrame, np.ndarray]:
    """scikit-image's motorcycle pair as a frame (id ``000000``) and its left image."""
    from skimage.data import stereo_motorcycle

    left, _, disp = stereo_motorcycle()
    points, calib = disparity_points(left, disp, **MOTORCYCLE)
    return KittiFrame("000000", points, calib, None, None, (left.shape[1], left.shape[0])), left


__all__ = ["disparity_points", "motorcycle_frame", "MOTORCYCLE"]
