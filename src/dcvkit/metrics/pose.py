"""Pose metrics, as pure functions of ground truth and predictions (keypoints (n, K, 3) ``x, y, v``).

* **OKS** (object keypoint similarity, COCO's): for each labelled keypoint ``exp(-d^2 / (2 s^2 k^2))`` with
  ``d`` the distance to the true keypoint, ``s^2`` the object's area and ``k = 2 sigma`` the keypoint's
  spread, averaged over the labelled keypoints (:func:`oks`).
* **OKS AP / AR** (AP over OKS thresholds 0.50:0.95, AP50, AP75, medium / large, AR): COCOeval's
  ``keypoints`` mode through faster-coco-eval (or pycocotools, the reference), with the keypoint set's own
  sigmas, so a set other than COCO's 17 is scored as it should be (:func:`keypoint_ap`).
* **PCK@alpha**: the share of labelled keypoints within ``alpha`` times the longer side of the object's box,
  and the per-keypoint mean error in pixels and in box sides (:func:`pck`), for predictions matched to
  objects one to one by OKS.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from dcvkit.metrics.detection import BACKENDS, _run

#: COCOeval's keypoint summary, in its order
KEYPOINT_STATS = ("ap", "ap50", "ap75", "ap_medium", "ap_large", "ar", "ar50", "ar75", "ar_medium", "ar_large")


def oks(gt: np.ndarray, area: float, pred: np.ndarray, sigmas: Sequence[float]) -> float:
    """OKS of one prediction (K, 2 or 3) against one object's keypoints (K, 3) of ``area`` pixels (COCO's
    formula, as pycocotools computes it); 0 when the object has no labelled keypoint."""
    gt, pred = np.asarray(gt, np.float64), np.asarray(pred, np.float64)
    labelled = gt[:, 2] > 0
    if not labelled.any():
        return 0.0
    var = (2 * np.asarray(sigmas, np.float64)) ** 2
    d2 = ((pred[:, :2] - gt[:, :2]) ** 2).sum(1)
    e = d2 / var / (area + np.spacing(1)) / 2
    return float(np.exp(-e[labelled]).mean())


def pose_coco_dicts(gt_keypoints: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray], gt_areas: Sequence[np.ndarray],
                    pred_keypoints: Sequence[np.ndarray], pred_scores: Sequence[np.ndarray],
                    names: Sequence[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per-image ground truth and predictions as a COCO keypoints dataset and results list."""
    images, anns, results = [], [], []
    for i, (gk, gb, ga) in enumerate(zip(gt_keypoints, gt_boxes, gt_areas), 1):
        images.append({"id": i, "width": 1, "height": 1, "file_name": f"{i}.png"})
        for k, b, a in zip(np.asarray(gk).reshape(-1, len(names), 3), np.asarray(gb).reshape(-1, 4), np.asarray(ga)):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 0, "area": float(a),
                         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                         "num_keypoints": int((k[:, 2] > 0).sum()),
                         "keypoints": np.where(k[:, 2:3] > 0, k, 0).reshape(-1).tolist()})
    for i, (pk, ps) in enumerate(zip(pred_keypoints, pred_scores), 1):
        for k, s in zip(np.asarray(pk).reshape(-1, len(names), np.asarray(pk).shape[-1] if np.size(pk) else 3),
                        np.asarray(ps).reshape(-1)):
            k3 = np.concatenate([k[:, :2], np.ones((len(k), 1))], 1)
            results.append({"image_id": i, "category_id": 1, "keypoints": k3.reshape(-1).tolist(), "score": float(s)})
    cats = [{"id": 1, "name": "person", "keypoints": list(names), "skeleton": []}]
    return {"images": images, "annotations": anns, "categories": cats}, results


def keypoint_ap(gt_keypoints: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray], gt_areas: Sequence[np.ndarray],
                pred_keypoints: Sequence[np.ndarray], pred_scores: Sequence[np.ndarray], names: Sequence[str],
                sigmas: Sequence[float], backend: str = BACKENDS[0]) -> dict[str, Any]:
    """COCO's keypoint AP/AR of per-image predictions (keypoints (m, K, 2|3), scores (m,)) against the
    ground truth (keypoints (n, K, 3), boxes (n, 4) x1 y1 x2 y2, areas (n,)), with ``sigmas``."""
    gt, results = pose_coco_dicts(gt_keypoints, gt_boxes, gt_areas, pred_keypoints, pred_scores, names)
    objects = sum(a["num_keypoints"] > 0 for a in gt["annotations"])
    out: dict[str, Any] = {"images": len(gt["images"]), "objects": int(objects), "predictions": len(results),
                           "backend": backend, "keypoints": len(names)}
    if not results or not objects:  # COCOeval refuses an empty results list: nothing found, AP 0
        out.update({k: 0.0 for k in KEYPOINT_STATS})
        return out
    ev = _run(gt, results, backend, iou_type="keypoints", sigmas=sigmas)
    out.update({k: float(v) for k, v in zip(KEYPOINT_STATS, ev.stats[: len(KEYPOINT_STATS)])})
    return out


def match_by_oks(gt: np.ndarray, areas: np.ndarray, pred: np.ndarray, sigmas: Sequence[float]
                 ) -> list[tuple[int, int, float]]:
    """One-to-one (object, prediction, OKS) pairs of one image that maximise the total OKS (OKS > 0)."""
    if len(gt) == 0 or len(pred) == 0:
        return []
    sim = np.array([[oks(g, a, p, sigmas) for p in pred] for g, a in zip(gt, areas)])
    rows, cols = linear_sum_assignment(-sim)
    return [(int(r), int(c), float(sim[r, c])) for r, c in zip(rows, cols) if sim[r, c] > 0]


def pck(gt_keypoints: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray], gt_areas: Sequence[np.ndarray],
        pred_keypoints: Sequence[np.ndarray], names: Sequence[str], sigmas: Sequence[float],
        alpha: float = 0.2) -> dict[str, Any]:
    """PCK@alpha over the labelled keypoints of every object (a missed object's keypoints count as wrong) and
    each keypoint's mean error (pixels; and in box sides) over the matched objects."""
    k = len(names)
    hits = np.zeros(k)
    labelled = np.zeros(k)
    err_px, err_rel, matched = np.zeros(k), np.zeros(k), np.zeros(k)
    for gk, gb, ga, pk in zip(gt_keypoints, gt_boxes, gt_areas, pred_keypoints):
        gk, gb = np.asarray(gk).reshape(-1, k, 3), np.asarray(gb).reshape(-1, 4)
        pk = np.asarray(pk).reshape(-1, k, np.asarray(pk).shape[-1] if np.size(pk) else 3)
        labelled += (gk[:, :, 2] > 0).sum(0)
        for r, c, _ in match_by_oks(gk, np.asarray(ga), pk, sigmas):
            side = max(gb[r, 2] - gb[r, 0], gb[r, 3] - gb[r, 1], 1e-9)
            on = gk[r, :, 2] > 0
            d = np.sqrt(((pk[c, :, :2] - gk[r, :, :2]) ** 2).sum(1))
            hits += on & (d <= alpha * side)
            err_px += np.where(on, d, 0)
            err_rel += np.where(on, d / side, 0)
            matched += on
    per_kpt = [{"keypoint": n, "pck": float(hits[i] / labelled[i]) if labelled[i] else None,
                "error_px": float(err_px[i] / matched[i]) if matched[i] else None,
                "error_box": float(err_rel[i] / matched[i]) if matched[i] else None, "labelled": int(labelled[i])}
               for i, n in enumerate(names)]
    return {f"pck@{alpha:g}": float(hits.sum() / labelled.sum()) if labelled.sum() else 0.0, "per_keypoint": per_kpt}


__all__ = ["oks", "keypoint_ap", "pose_coco_dicts", "match_by_oks", "pck", "KEYPOINT_STATS"]
