"""Pose estimators (registry family ``pose``, trained by ``dcv pose train``; their face: :mod:`.base`):
``yolo_pose`` (the project's ``yolo`` with keypoints regressed per grid cell and an OKS loss, one pass),
``heatmap`` (top-down: crops of each person's box -> a U-Net -> a heatmap per keypoint, sub-pixel peaks) and
``keypoint_rcnn`` (the project's ``faster_rcnn`` with Mask R-CNN's keypoint head on RoI features)."""

from dcvkit.models.pose import heatmap, keypoint_rcnn, yolo_pose  # noqa: F401  (registers them)
from dcvkit.models.pose.base import PoseDetections
from dcvkit.models.pose.heatmap import HeatmapPose
from dcvkit.models.pose.keypoint_rcnn import KeypointRCNN
from dcvkit.models.pose.yolo_pose import YOLOPose

__all__ = ["YOLOPose", "HeatmapPose", "KeypointRCNN", "PoseDetections"]
