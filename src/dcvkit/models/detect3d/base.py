"""What every 3-D detector shares, so training, evaluation and the CLI never branch on the model.

The face:

* ``loss(points, counts, boxes, labels) -> {"loss": total, ...}``: ``points`` (B, N, 4) x y z intensity in
  the LiDAR frame, padded; ``counts`` (B,) how many of each row are real; per cloud ``boxes`` (M, 7) LiDAR
  boxes (x y z centre, l w h, yaw) and ``labels`` (M,);
* ``predict(points, counts, score_thresh, nms_iou, max_det) -> [Detections3D]``;
* ``grid``: the region of space it sees (:class:`Grid`), ``stride``: its output cells in pillars.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class Grid:
    """The region the detector sees (LiDAR frame, metres) and its pillar size; the default is the camera's
    field of view to 41 m ahead, 128 x 128 pillars of 0.32 m."""

    x: tuple[float, float] = (0.0, 40.96)
    y: tuple[float, float] = (-20.48, 20.48)
    z: tuple[float, float] = (-3.0, 1.0)
    pillar: float = 0.32

    @property
    def shape(self) -> tuple[int, int]:
        """(rows along y, columns along x)."""
        return (int(round((self.y[1] - self.y[0]) / self.pillar)), int(round((self.x[1] - self.x[0]) / self.pillar)))


@dataclass
class Detections3D:
    """One cloud's detections: (K, 7) LiDAR boxes, (K,) class indices, (K,) scores, best first."""

    boxes: Tensor
    labels: Tensor
    scores: Tensor

    def __len__(self) -> int:
        return len(self.labels)


class Detector3D(nn.Module):
    """The shared part: the class count, the grid, the output stride (2 pillars per cell)."""

    stride = 2
    defaults = {"epochs": 16, "batch_size": 8}

    def __init__(self, num_classes: int, grid: Grid):
        super().__init__()
        self.num_classes, self.grid = num_classes, grid


__all__ = ["Grid", "Detections3D", "Detector3D"]
