"""Region-based detectors and the parts they share: proposals (sliding windows, selective search), RoI
pooling and crop warping, box coding, region sampling, post-processing (score threshold, per-class NMS,
top-k)."""

from dcvkit.models.detect import crop, fast_rcnn  # noqa: F401  (registers sliding_window, rcnn, fast_rcnn)
from dcvkit.models.detect.base import RegionDetector
from dcvkit.models.detect.postprocess import Detections, PostProcess

__all__ = ["RegionDetector", "Detections", "PostProcess"]
