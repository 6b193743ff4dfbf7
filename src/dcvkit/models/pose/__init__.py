"""Pose estimators (registry family ``pose``, trained by ``dcv pose train``): ``yolo_pose`` (the project's
``yolo`` with keypoints regressed per grid cell and an OKS loss, one pass). The face a pose model shows the
task: ``loss(images, boxes, keypoints, areas)`` and ``detect_pose(images, score_thresh, nms_iou)``. The
top-down ``heatmap`` and ``keypoint_rcnn`` models are not written yet (docs/results.md, issue 25)."""

from dcvkit.models.pose import yolo_pose  # noqa: F401  (registers it)
from dcvkit.models.pose.yolo_pose import PoseDetections, YOLOPose

__all__ = ["YOLOPose", "PoseDetections"]
