"""A constant-velocity Kalman filter over boxes, batched over every track of a frame.

State per track: ``cx, cy, a, h`` (centre, aspect ratio w/h, height) and their velocities, with noise scaled
by the box height (DeepSORT's and ByteTrack's parametrisation: a big box moves more pixels per frame than a
small one). The filter is written here, in NumPy, batched: a tracker predicts and updates all its tracks
with a few array operations per frame, where filterpy's ``KalmanFilter`` (not a dependency) runs one Python
object per track; ``dcv bench track`` reports the tracker's milliseconds per frame apart from the
detector's.
"""

from __future__ import annotations

import numpy as np

#: chi-square 0.95 quantiles by degrees of freedom: the Mahalanobis gate (DeepSORT's ``chi2inv95``)
CHI2_95 = {1: 3.8415, 2: 5.9915, 3: 7.8147, 4: 9.4877}


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w / np.maximum(h, 1e-6), h], 1)


def xyah_to_xyxy(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
    h = np.maximum(x[:, 3], 1e-6)
    w = x[:, 2] * h
    return np.stack([x[:, 0] - w / 2, x[:, 1] - h / 2, x[:, 0] + w / 2, x[:, 1] + h / 2], 1)


class KalmanBoxFilter:
    """Predict and update many tracks at once. ``mean`` (n, 8) and ``cov`` (n, 8, 8) are the caller's arrays
    (one row per track); every method takes and returns them.

    ``std_position`` / ``std_velocity``: the process noise per frame as a fraction of the box height (1/20 and
    1/160, DeepSORT's values)."""

    def __init__(self, std_position: float = 1 / 20, std_velocity: float = 1 / 160):
        self.std_position, self.std_velocity = std_position, std_velocity
        self.F = np.eye(8)
        self.F[:4, 4:] = np.eye(4)  # x_{t+1} = x_t + v_t
        self.H = np.eye(4, 8)

    def initiate(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks at these boxes (x1 y1 x2 y2), velocity zero and uncertain."""
        z = xyxy_to_xyah(boxes)
        mean = np.concatenate([z, np.zeros_like(z)], 1)
        h = z[:, 3]
        sp, sv = self.std_position, self.std_velocity
        std = np.stack([2 * sp * h, 2 * sp * h, np.full_like(h, 1e-2), 2 * sp * h,
                        10 * sv * h, 10 * sv * h, np.full_like(h, 1e-5), 10 * sv * h], 1)
        return mean, np.einsum("ni,ij->nij", std ** 2, np.eye(8))

    def _process_noise(self, mean: np.ndarray) -> np.ndarray:
        h = mean[:, 3]
        sp, sv = self.std_position, self.std_velocity
        std = np.stack([sp * h, sp * h, np.full_like(h, 1e-2), sp * h,
                        sv * h, sv * h, np.full_like(h, 1e-5), sv * h], 1)
        return np.einsum("ni,ij->nij", std ** 2, np.eye(8))

    def _measurement_noise(self, mean: np.ndarray) -> np.ndarray:
        h = mean[:, 3]
        sp = self.std_position
        std = np.stack([sp * h, sp * h, np.full_like(h, 1e-1), sp * h], 1)
        return np.einsum("ni,ij->nij", std ** 2, np.eye(4))

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead: x = F x, P = F P F^T + Q."""
        if len(mean) == 0:
            return mean, cov
        mean = mean @ self.F.T
        cov = self.F @ cov @ self.F.T + self._process_noise(mean)
        return mean, cov

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The predicted measurement (n, 4) and its covariance (n, 4, 4): H x, H P H^T + R."""
        return mean @ self.H.T, self.H @ cov @ self.H.T + self._measurement_noise(mean)

    def update(self, mean: np.ndarray, cov: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct each track with its matched box (row i with boxes[i]): the standard Kalman update."""
        if len(mean) == 0:
            return mean, cov
        z = xyxy_to_xyah(boxes)
        proj_mean, proj_cov = self.project(mean, cov)
        gain = np.linalg.solve(proj_cov, (cov @ self.H.T).transpose(0, 2, 1)).transpose(0, 2, 1)  # P H^T S^-1
        innovation = z - proj_mean
        mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        cov = cov - gain @ proj_cov @ gain.transpose(0, 2, 1)
        return mean, cov

    def mahalanobis(self, mean: np.ndarray, cov: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(tracks, boxes) squared Mahalanobis distances of the boxes from each track's predicted measurement."""
        if len(mean) == 0 or len(boxes) == 0:
            return np.zeros((len(mean), len(boxes)))
        proj_mean, proj_cov = self.project(mean, cov)
        d = xyxy_to_xyah(boxes)[None, :, :] - proj_mean[:, None, :]  # (n, m, 4)
        inv = np.linalg.inv(proj_cov)
        return np.einsum("nmi,nij,nmj->nm", d, inv, d)


__all__ = ["KalmanBoxFilter", "xyxy_to_xyah", "xyah_to_xyxy", "CHI2_95"]
