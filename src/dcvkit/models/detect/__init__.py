"""Region-based detectors and the parts they share: proposals (sliding windows, selective search), RoI
pooling and crop warping, box coding, region sampling, post-processing (score threshold, per-class NMS,
top-k)."""

from dcvkit.models.detect import crop, fast_rcnn, faster_rcnn, rcnn, yolo, yolo_pyramid  # noqa: F401  (registers them)
from dcvkit.models.detect.base import Detector, RegionDetector
from dcvkit.models.detect.postprocess import Detections, PostProcess

__all__ = ["Detector", "RegionDetector", "Detections", "PostProcess"]
