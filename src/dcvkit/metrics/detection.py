"""COCO-standard detection metrics, computed by faster-coco-eval (a C++ re-implementation of pycocotools'
COCOeval that returns the same numbers, measured in ``tests/detect/test_detect_metrics.py``) or by
pycocotools itself (``backend="pycocotools"``). Nothing of the matching or the 101-point interpolation is
re-implemented here; this module only builds the COCO dictionaries and reads the results out. (Detections
with exactly tied scores may be matched in another order by the two libraries; AP is then ill-defined
anyway, and an untrained model is the only place such ties are common.)

Results: ``map`` (AP@[.5:.95]), ``map50``, ``map75``, ``map_small/medium/large``, ``mar100``, per-class AP
and AP@0.5, and ``pr_curves``: precision at 101 recall points per class at IoU 0.5 (for the PR plot).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Sequence

import numpy as np
from torch import Tensor

from dcvkit.errors import ConfigError

BACKENDS = ("faster_coco_eval", "pycocotools")
STATS = ("map", "map50", "map75", "map_small", "map_medium", "map_large", "mar1", "mar10", "mar100",
         "mar_small", "mar_medium", "mar_large")


def coco_dicts(gt_boxes: Sequence[Tensor], gt_labels: Sequence[Tensor], pred_boxes: Sequence[Tensor],
               pred_scores: Sequence[Tensor], pred_labels: Sequence[Tensor], classes: Sequence[str]
               ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ground truth as a COCO dataset dict and predictions as a COCO results list (boxes x1 y1 x2 y2 pixels,
    labels 0-based; COCO ids start at 1). Image sizes are left 0 x 0: bbox evaluation does not read them."""
    images, anns, results = [], [], []
    for i, (gb, gl) in enumerate(zip(gt_boxes, gt_labels)):
        images.append({"id": i + 1, "width": 0, "height": 0})
        for b, c in zip(gb.tolist(), gl.tolist()):
            bw, bh = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                         "bbox": [b[0], b[1], bw, bh], "area": bw * bh, "iscrowd": 0})
    for i, (pb, ps, pl) in enumerate(zip(pred_boxes, pred_scores, pred_labels)):
        for b, s, c in zip(pb.tolist(), ps.tolist(), pl.tolist()):
            results.append({"image_id": i + 1, "category_id": int(c) + 1,
                            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": float(s)})
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(classes)]
    return {"images": images, "annotations": anns, "categories": cats}, results


def _run(gt: dict[str, Any], results: list[dict[str, Any]], backend: str, iou_type: str = "bbox",
         sigmas: Sequence[float] | None = None):
    """Evaluate, accumulate and summarise with ``backend``'s COCO and COCOeval classes (their prints muted);
    ``iou_type="keypoints"`` scores OKS with the keypoint set's ``sigmas`` (metrics/pose.py)."""
    if backend == "faster_coco_eval":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval

        def load(d: dict[str, Any]):
            return COCO(d)
    elif backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        def load(d: dict[str, Any]):
            coco = COCO()
            coco.dataset = d
            coco.createIndex()
            return coco
    else:
        raise ConfigError(f"unknown COCO evaluation backend '{backend}'; choose {', '.join(BACKENDS)}")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = load(gt)
        if iou_type == "keypoints" and backend == "faster_coco_eval":
            ev = COCOeval(coco_gt, coco_gt.loadRes(results), iouType=iou_type, kpt_oks_sigmas=list(sigmas or []))
        else:
            ev = COCOeval(coco_gt, coco_gt.loadRes(results), iouType=iou_type)
            if iou_type == "keypoints":
                ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _mean_valid(a: np.ndarray) -> float | None:
    v = a[a > -1]
    return float(v.mean()) if v.size else None


def coco_eval(gt_boxes: Sequence[Tensor], gt_labels: Sequence[Tensor], pred_boxes: Sequence[Tensor],
              pred_scores: Sequence[Tensor], pred_labels: Sequence[Tensor], classes: Sequence[str],
              backend: str = "faster_coco_eval") -> dict[str, Any]:
    """COCO bbox evaluation of per-image predictions against ground truth (see the module docstring)."""
    gt, results = coco_dicts(gt_boxes, gt_labels, pred_boxes, pred_scores, pred_labels, classes)
    out: dict[str, Any] = {"images": len(gt["images"]), "objects": len(gt["annotations"]),
                           "detections": len(results), "backend": backend}
    if not results or not gt["annotations"]:  # COCOeval refuses an empty results list: nothing found, AP 0
        out.update({k: 0.0 for k in STATS})
        out["per_class"] = [{"class": c, "ap": 0.0, "ap50": 0.0, "objects": 0} for c in classes]
        out["pr_curves"] = {"recall": np.linspace(0, 1, 101).tolist(), "precision": [[0.0] * 101 for _ in classes]}
        return out
    ev = _run(gt, results, backend)
    stats = [float(s) for s in ev.stats[: len(STATS)]]
    out.update(dict(zip(STATS, stats)))
    prec = np.asarray(ev.eval["precision"])  # (T iou, R recall, K classes, A areas, M max-dets)
    counts = np.bincount([a["category_id"] - 1 for a in gt["annotations"]], minlength=len(classes))
    per_class = []
    for k, name in enumerate(classes):
        ap, ap50 = _mean_valid(prec[:, :, k, 0, -1]), _mean_valid(prec[0, :, k, 0, -1])
        per_class.append({"class": name, "ap": ap, "ap50": ap50, "objects": int(counts[k])})
    out["per_class"] = per_class
    curves = np.clip(prec[0, :, :, 0, -1], 0, None).T  # (K, 101): -1 (no objects) shown as 0
    out["pr_curves"] = {"recall": np.linspace(0, 1, 101).tolist(), "precision": curves.round(5).tolist()}
    return out


__all__ = ["coco_eval", "coco_dicts", "BACKENDS", "STATS"]
