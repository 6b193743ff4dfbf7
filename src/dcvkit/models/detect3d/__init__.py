"""3-D object detectors (registry family ``detect3d``, trained by ``dcv detect3d train``; their face:
:mod:`.base`): ``pointpillars`` (pillars of LiDAR points -> a bird's-eye-view pseudo-image -> a 2-D CNN ->
a centre heatmap with box and direction heads), dense PyTorch ops only."""

from dcvkit.models.detect3d import pointpillars  # noqa: F401  (registers it)
from dcvkit.models.detect3d.base import Detections3D, Detector3D, Grid
from dcvkit.models.detect3d.pointpillars import PointPillars

__all__ = ["PointPillars", "Detector3D", "Detections3D", "Grid"]
