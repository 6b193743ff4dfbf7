"""The frames of a LiDAR + camera rig, KITTI's conventions, and the one place where points and boxes move
between them (every other module calls these; none multiplies a calibration matrix itself).

Frames::

    LiDAR (velodyne)      x forward, y left, z up; metres; the sensor at the origin
    camera (rectified)    x right, y down, z forward: Tr_velo_to_cam, then R0_rect
    image                 pixels (u right, v down): P2 times the rectified camera point, divided by depth

Boxes::

    LiDAR box   (x, y, z, l, w, h, yaw): the box's *centre*; l along the heading, yaw about z from +x (to +y)
    KITTI label h w l, x y z, rotation_y: the *bottom centre* in the rectified camera frame, rotation about
                camera y (0: facing camera +x), so yaw = -rotation_y - pi/2

What KITTI users most often get wrong, and what this module does about it: the label's box is at the bottom
centre in the camera frame, not the centre in the LiDAR frame (:func:`camera_to_lidar_boxes` and back, a
round trip to 1e-9), and the dimensions are listed h w l (the readers in :mod:`dcvkit.data.kitti` keep the
file's order and convert here). Following OpenPCDet, the bottom centre moves to the LiDAR frame as a point
and the box is lifted by h / 2 along LiDAR z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: KITTI's image size (width, height) and a camera of its odometry sequences, for simulated rigs
KITTI_IMAGE = (1242, 375)


@dataclass(frozen=True)
class Calibration:
    """One frame's calibration: ``P2`` (3, 4) the left colour camera's projection, ``R0_rect`` (3, 3) the
    rectifying rotation, ``Tr_velo_to_cam`` (3, 4) LiDAR -> (unrectified) camera."""

    P2: np.ndarray
    R0_rect: np.ndarray
    Tr_velo_to_cam: np.ndarray

    @classmethod
    def simulated(cls, image_size: tuple[int, int] = KITTI_IMAGE, focal: float = 721.5377,
                  lidar_height_above_camera: float = 0.08, lidar_behind_camera: float = 0.27) -> "Calibration":
        """A rig like KITTI's: its camera intrinsics (scaled to ``image_size``), no rectifying rotation, the
        LiDAR slightly above and behind the camera with its axes KITTI's."""
        w, h = image_size
        f = focal * w / KITTI_IMAGE[0]
        P2 = np.array([[f, 0, w / 2, 0], [0, f, h / 2 - 0.5, 0], [0, 0, 1, 0]], dtype=np.float64)
        axes = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=np.float64)  # lidar x y z -> camera z -x -y
        # the LiDAR's origin seen from the camera: up (camera -y) and behind (camera -z)
        t = np.array([0.0, -lidar_height_above_camera, -lidar_behind_camera])
        return cls(P2, np.eye(3), np.column_stack([axes, t]))

    # points ------------------------------------------------------------------------------------------------
    def lidar_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) LiDAR points -> (N, 3) rectified camera points."""
        p = np.asarray(points, dtype=np.float64)[:, :3]
        return (p @ self.Tr_velo_to_cam[:, :3].T + self.Tr_velo_to_cam[:, 3]) @ self.R0_rect.T

    def camera_to_lidar(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) rectified camera points -> (N, 3) LiDAR points (the inverse of :meth:`lidar_to_camera`)."""
        p = np.asarray(points, dtype=np.float64)[:, :3] @ np.linalg.inv(self.R0_rect).T
        rot, t = self.Tr_velo_to_cam[:, :3], self.Tr_velo_to_cam[:, 3]
        return (p - t) @ np.linalg.inv(rot).T

    def camera_to_image(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) rectified camera points -> ((N, 2) pixels, (N,) depth); only points with depth > 0 project."""
        p = np.asarray(points, dtype=np.float64)
        uvw = p @ self.P2[:, :3].T + self.P2[:, 3]
        depth = uvw[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[:, :2] / depth[:, None]
        return uv, depth - self.P2[2, 3]

    def lidar_to_image(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.camera_to_image(self.lidar_to_camera(points))

    def in_image(self, points: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
        """(N,) which LiDAR points project inside a (width, height) image, in front of the camera."""
        uv, depth = self.lidar_to_image(points)
        w, h = image_size
        return (depth > 0.1) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)


# boxes ---------------------------------------------------------------------------------------------------------
def wrap_angle(a: np.ndarray | float) -> np.ndarray:
    """Angles in [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def camera_to_lidar_boxes(dims_hwl: np.ndarray, bottom: np.ndarray, rotation_y: np.ndarray,
                          calib: Calibration) -> np.ndarray:
    """KITTI label boxes (h w l, bottom centre x y z in the camera frame, rotation_y) -> (N, 7) LiDAR boxes
    (x y z centre, l w h, yaw)."""
    dims_hwl, bottom = np.asarray(dims_hwl, np.float64).reshape(-1, 3), np.asarray(bottom, np.float64).reshape(-1, 3)
    xyz = calib.camera_to_lidar(bottom)
    h, w, l = dims_hwl.T
    xyz[:, 2] += h / 2
    yaw = wrap_angle(-np.asarray(rotation_y, np.float64).reshape(-1) - np.pi / 2)
    return np.column_stack([xyz, l, w, h, yaw])


def lidar_to_camera_boxes(boxes: np.ndarray, calib: Calibration) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 7) LiDAR boxes -> (h w l (N, 3), bottom centre in the camera frame (N, 3), rotation_y (N,))."""
    b = np.asarray(boxes, np.float64).reshape(-1, 7)
    bottom = b[:, :3].copy()
    bottom[:, 2] -= b[:, 5] / 2
    return (np.column_stack([b[:, 5], b[:, 4], b[:, 3]]), calib.lidar_to_camera(bottom),
            wrap_angle(-b[:, 6] - np.pi / 2))


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 7) LiDAR boxes -> (N, 8, 3) corners: the bottom four counter-clockwise from front-left seen from
    above, then the top four in the same order."""
    b = np.asarray(boxes, np.float64).reshape(-1, 7)
    x = np.array([1, -1, -1, 1]) / 2
    y = np.array([1, 1, -1, -1]) / 2
    local = np.stack([np.concatenate([x, x])[None] * b[:, 3:4], np.concatenate([y, y])[None] * b[:, 4:5],
                      np.concatenate([-np.ones(4), np.ones(4)])[None] / 2 * b[:, 5:6]], -1)  # (N, 8, 3)
    c, s = np.cos(b[:, 6]), np.sin(b[:, 6])
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (N, 2, 2)
    xy = np.einsum("nij,nkj->nki", rot, local[..., :2])
    return np.concatenate([xy, local[..., 2:]], -1) + b[:, None, :3]


def image_boxes(boxes: np.ndarray, calib: Calibration, image_size: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """(N, 7) LiDAR boxes -> ((N, 4) the 2-D boxes x1 y1 x2 y2 of their projected corners, clipped to the
    (width, height) image; (N,) truncation: the share of the unclipped 2-D box outside the image). A box
    with a corner behind the camera is clipped at the image's edge; one wholly behind it gets zeros and 1."""
    n = len(np.asarray(boxes).reshape(-1, 7))
    if n == 0:
        return np.zeros((0, 4)), np.zeros(0)
    corners = box_corners(boxes).reshape(-1, 3)
    uv, depth = calib.lidar_to_image(corners)
    uv, depth = uv.reshape(n, 8, 2), depth.reshape(n, 8)
    w, h = image_size
    front = depth > 0.01
    big = 1e6
    u = np.where(front, uv[..., 0], np.nan)
    v = np.where(front, uv[..., 1], np.nan)
    with np.errstate(all="ignore"):
        raw = np.column_stack([np.nanmin(u, 1), np.nanmin(v, 1), np.nanmax(u, 1), np.nanmax(v, 1)])
    partly = ~front.all(1) & front.any(1)  # a corner behind the camera: the box reaches the image's edge
    raw[partly] = np.column_stack([np.where(raw[partly, 0] < w / 2, -big, raw[partly, 0]), raw[partly, 1],
                                   np.where(raw[partly, 2] > w / 2, big, raw[partly, 2]), raw[partly, 3]])
    raw[~front.any(1)] = 0
    clipped = np.column_stack([raw[:, 0].clip(0, w - 1), raw[:, 1].clip(0, h - 1), raw[:, 2].clip(0, w - 1),
                               raw[:, 3].clip(0, h - 1)])
    area = lambda b: np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)  # noqa: E731
    with np.errstate(all="ignore"):
        trunc = np.where(area(raw) > 0, 1 - area(clipped) / area(raw), 1.0)
    return clipped, np.clip(np.nan_to_num(trunc, nan=1.0), 0, 1)


def observation_angle(boxes: np.ndarray) -> np.ndarray:
    """KITTI's alpha of (N, 7) LiDAR boxes: rotation_y minus the ray's angle, as the camera sees it."""
    b = np.asarray(boxes, np.float64).reshape(-1, 7)
    return wrap_angle(-np.arctan2(-b[:, 1], b[:, 0]) + wrap_angle(-b[:, 6] - np.pi / 2))


__all__ = ["Calibration", "camera_to_lidar_boxes", "lidar_to_camera_boxes", "box_corners", "image_boxes",
           "observation_angle", "wrap_angle", "KITTI_IMAGE"]
