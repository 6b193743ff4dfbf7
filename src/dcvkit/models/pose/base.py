"""What every pose model shows the pose task, so training, evaluation and the CLI never branch on the kind.

* ``loss(images, boxes, keypoints, areas) -> {"loss": total, ...parts}`` (per image boxes (n, 4), keypoints
  (n, K, 3) x y v, areas (n,), in the pixels of ``images``);
* ``detect_pose(images, score_thresh, nms_iou, boxes=None, box_scores=None) -> [PoseDetections]``;
* ``needs_boxes``: a top-down model (``heatmap``) estimates keypoints inside boxes it is given (the ground
  truth's, or another run's people); the others find their own and ignore ``boxes``;
* ``defaults``: the training options ``dcv pose train`` leaves to the model (epochs, batch size, mosaic and
  affine probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class PoseDetections:
    """One image's people, best first: boxes (n, 4) x1 y1 x2 y2, scores (n,), keypoints (n, K, 3) x, y and
    presence probability (or heatmap peak)."""

    boxes: Tensor
    scores: Tensor
    keypoints: Tensor

    def __len__(self) -> int:
        return len(self.scores)


#: the training options a pose model may leave to itself, and their values when it names none
DEFAULTS = {"epochs": 40, "batch_size": 16, "mosaic": 0.0, "affine": 0.0}

__all__ = ["PoseDetections", "DEFAULTS"]
