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

import torch
from torch import Tensor


def keypoint_score(scores: Tensor, confidence: Tensor, shown: float = 0.2) -> Tensor:
    """People's scores (n,) times the mean confidence (n, K) of their keypoints that show (above ``shown``;
    all K where none does): HRNet's and SimpleBaseline's rescoring. OKS AP ranks people by their score, and
    a box's score says that a person is there, not that their keypoints are right."""
    on = confidence > shown
    mean = torch.where(on.any(1), (confidence * on).sum(1) / on.sum(1).clamp_min(1), confidence.mean(1))
    return scores * mean


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

__all__ = ["PoseDetections", "DEFAULTS", "keypoint_score"]
