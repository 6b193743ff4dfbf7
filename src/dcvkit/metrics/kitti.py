"""KITTI's object-detection evaluation: AP with 40 recall points (and the old 11) for 2-D boxes, bird's-eye
view and 3-D, per class at its IoU (0.7 cars, 0.5 the others), per difficulty, and AOS.

The rules of KITTI's devkit (``evaluate_object.cpp``, as OpenPCDet ports it), kept exactly:

* difficulty d in (easy, moderate, hard): a true object counts when its 2-D box is taller than
  ``MIN_HEIGHT[d]`` px, its occlusion is at most ``MAX_OCCLUSION[d]`` and its truncation at most
  ``MAX_TRUNCATION[d]``; one that fails (and any of the neighbouring class: Van for Car, Person_sitting for
  Pedestrian) is ignored: a detection matched to it is neither a hit nor a false positive;
* a detection whose 2-D box is shorter than ``MIN_HEIGHT[d]`` is ignored;
* matching per frame and class: each true object takes the unassigned detection above the threshold with the
  highest overlap (a valid one before an ignored one);
* the score thresholds are those of the hits at 41 evenly spaced recalls; precision (and orientation
  similarity, for AOS) at each, made monotone; AP|R40 averages recalls 1/40 .. 1, AP|R11 0, 0.1 .. 1.

Written here (not a dependency): KITTI's own code is C++ with no Python package, OpenPCDet's port needs numba
and CUDA. Numbers are fractions (0..1), not percentages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from dcvkit.data.kitti import NEIGHBOURS

DIFFICULTIES = ("easy", "moderate", "hard")
MIN_HEIGHT = (40, 25, 25)
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
#: the IoU a detection needs per class (KITTI's "moderate" setting); other classes 0.5
MIN_OVERLAP = {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5}
SAMPLE_POINTS = 41
METRICS = ("bbox", "bev", "3d")


@dataclass
class FrameObjects:
    """One frame's objects for the evaluation (truth or detections): class names, (N, 4) 2-D boxes,
    (N, 7) LiDAR boxes, (N,) alpha; truths also occlusion and truncation, detections scores."""

    names: Sequence[str]
    bbox: np.ndarray
    boxes: np.ndarray
    alpha: np.ndarray
    occluded: np.ndarray | None = None
    truncated: np.ndarray | None = None
    scores: np.ndarray | None = None


def _overlaps(metric: str, det: FrameObjects, gt: FrameObjects) -> np.ndarray:
    """(D, G) IoU of the detections and the truths in ``metric``."""
    if len(det.names) == 0 or len(gt.names) == 0:
        return np.zeros((len(det.names), len(gt.names)))
    if metric == "bbox":
        from torchvision.ops import box_iou

        return box_iou(torch.as_tensor(det.bbox, dtype=torch.float64),
                       torch.as_tensor(gt.bbox, dtype=torch.float64)).numpy()
    from dcvkit.metrics.box3d import bev_iou, iou_3d

    fn = bev_iou if metric == "bev" else iou_3d
    return fn(torch.as_tensor(det.boxes, dtype=torch.float64), torch.as_tensor(gt.boxes, dtype=torch.float64)).numpy()


def _ignored(cls: str, d: int, gt: FrameObjects, det: FrameObjects) -> tuple[np.ndarray, np.ndarray]:
    """KITTI's clean_data: per truth 0 (counts), 1 (ignored), -1 (another class); per detection the same."""
    height = gt.bbox[:, 3] - gt.bbox[:, 1] if len(gt.names) else np.zeros(0)
    g = np.full(len(gt.names), -1)
    for i, name in enumerate(gt.names):
        hard = (gt.occluded[i] > MAX_OCCLUSION[d] or gt.truncated[i] > MAX_TRUNCATION[d]
                or height[i] <= MIN_HEIGHT[d])
        if name == cls:
            g[i] = 1 if hard else 0
        elif NEIGHBOURS.get(cls) == name:
            g[i] = 1
    dh = det.bbox[:, 3] - det.bbox[:, 1] if len(det.names) else np.zeros(0)
    t = np.array([(1 if dh[j] < MIN_HEIGHT[d] else 0) if n == cls else -1 for j, n in enumerate(det.names)], int)
    return g, t


def _match(overlap: np.ndarray, scores: np.ndarray, ig_gt: np.ndarray, ig_det: np.ndarray, min_overlap: float,
           thresh: float, compute_fp: bool, d_alpha: np.ndarray | None = None) -> tuple[int, int, int, float, list]:
    """One frame at one score threshold: (tp, fp, fn, orientation similarity, the hits' scores)."""
    assigned = np.zeros(len(scores), bool)
    below = scores < thresh
    tp = fp = fn = 0
    hits, sims = [], []
    for i in range(len(ig_gt)):
        if ig_gt[i] == -1:
            continue
        best, best_val, best_ignored = -1, -np.inf, False
        for j in range(len(scores)):
            if ig_det[j] == -1 or assigned[j] or below[j] or overlap[j, i] <= min_overlap:
                continue
            if not compute_fp:
                if scores[j] > best_val:
                    best, best_val = j, scores[j]
            elif ig_det[j] == 0 and (overlap[j, i] > best_val or best_ignored):
                best, best_val, best_ignored = j, overlap[j, i], False
            elif best == -1 and ig_det[j] == 1:
                best, best_val, best_ignored = j, -np.inf, True
        if best == -1:
            fn += int(ig_gt[i] == 0)
        elif ig_gt[i] == 1 or ig_det[best] == 1:
            assigned[best] = True
        else:
            tp += 1
            hits.append(scores[best])
            if d_alpha is not None:
                sims.append((1 + np.cos(d_alpha[best, i])) / 2)
            assigned[best] = True
    if compute_fp:
        fp = int(((~assigned) & (ig_det == 0) & ~below).sum())
    return tp, fp, fn, float(np.sum(sims)), hits


def _thresholds(scores: np.ndarray, num_gt: int) -> np.ndarray:
    """The scores at which recall passes 0, 1/40, ..., 1 (KITTI's get_thresholds)."""
    scores = np.sort(scores)[::-1]
    out, current = [], 0.0
    for i, s in enumerate(scores):
        left, right = (i + 1) / num_gt, (i + 2) / num_gt if i < len(scores) - 1 else (i + 1) / num_gt
        if right - current < current - left and i < len(scores) - 1:
            continue
        out.append(s)
        current += 1 / (SAMPLE_POINTS - 1)
    return np.array(out)


def kitti_ap(truths: Sequence[FrameObjects], detections: Sequence[FrameObjects], classes: Sequence[str],
             metrics: Sequence[str] = METRICS, min_overlap: dict[str, float] | None = None) -> dict:
    """``{metric: {class: {difficulty: {"AP_R40", "AP_R11", "gt"} (+ "AOS_R40", "AOS_R11" for bbox)}}}``
    over paired frames of truths and detections."""
    if len(truths) != len(detections):
        raise ValueError(f"{len(truths)} frames of truth but {len(detections)} of detections")
    thresholds = {**MIN_OVERLAP, **(min_overlap or {})}
    out: dict = {}
    for metric in metrics:
        overlaps = [_overlaps(metric, d, g) for d, g in zip(detections, truths)]
        d_alpha = [(d.alpha[:, None] - g.alpha[None]) if len(d.names) and len(g.names) else None
                   for d, g in zip(detections, truths)] if metric == "bbox" else [None] * len(truths)
        out[metric] = {}
        for cls in classes:
            mo = thresholds.get(cls, 0.5)
            out[metric][cls] = {}
            for d, diff in enumerate(DIFFICULTIES):
                ig = [_ignored(cls, d, g, det) for g, det in zip(truths, detections)]
                num_gt = int(sum((g == 0).sum() for g, _ in ig))
                entry = {"gt": num_gt, "AP_R40": 0.0, "AP_R11": 0.0}
                if metric == "bbox":
                    entry.update(AOS_R40=0.0, AOS_R11=0.0)
                if num_gt == 0:
                    entry["AP_R40"] = entry["AP_R11"] = None
                    out[metric][cls][diff] = entry
                    continue
                hit_scores = []
                for k, (g, t) in enumerate(ig):
                    s = detections[k].scores if detections[k].scores is not None else np.ones(len(t))
                    hit_scores += _match(overlaps[k], s, g, t, mo, -np.inf, False)[4]
                ths = _thresholds(np.array(hit_scores), num_gt)
                stats = np.zeros((len(ths), 4))
                for k, (g, t) in enumerate(ig):
                    s = detections[k].scores if detections[k].scores is not None else np.ones(len(t))
                    for n, th in enumerate(ths):
                        tp, fp, fn, sim, _ = _match(overlaps[k], s, g, t, mo, th, True, d_alpha[k])
                        stats[n] += (tp, fp, fn, sim)
                prec, aos = np.zeros(SAMPLE_POINTS), np.zeros(SAMPLE_POINTS)
                if len(ths):
                    tp, fp = stats[:, 0], stats[:, 1]
                    prec[:len(ths)] = tp / np.maximum(tp + fp, 1)
                    aos[:len(ths)] = stats[:, 3] / np.maximum(tp + fp, 1)
                    prec = np.maximum.accumulate(prec[::-1])[::-1]
                    aos = np.maximum.accumulate(aos[::-1])[::-1]
                entry["AP_R40"] = float(prec[1:].sum() / 40)
                entry["AP_R11"] = float(prec[0::4].sum() / 11)
                if metric == "bbox":
                    entry["AOS_R40"] = float(aos[1:].sum() / 40)
                    entry["AOS_R11"] = float(aos[0::4].sum() / 11)
                out[metric][cls][diff] = entry
    return out


__all__ = ["FrameObjects", "kitti_ap", "DIFFICULTIES", "MIN_OVERLAP", "MIN_HEIGHT", "MAX_OCCLUSION",
           "MAX_TRUNCATION", "METRICS"]
