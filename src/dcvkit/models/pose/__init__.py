"""Pose estimators (registry family ``pose``): ``yolo_pose`` (the project's ``yolo`` with keypoints
regressed per grid cell and an OKS loss, one pass). The top-down ``heatmap`` and ``keypoint_rcnn`` models,
the ``dcv pose`` task and its CLI are not written yet (docs/results.md, issue 25)."""

from dcvkit.models.pose import yolo_pose  # noqa: F401  (registers it)
from dcvkit.models.pose.yolo_pose import PoseDetections, YOLOPose

__all__ = ["YOLOPose", "PoseDetections"]
