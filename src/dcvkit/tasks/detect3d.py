"""3-D object detection: oriented boxes of cars, pedestrians and cyclists from a LiDAR point cloud, scored by
KITTI's AP (2-D, bird's-eye view, 3-D; R40 and R11; easy / moderate / hard) and AOS.

Python API (the CLI calls exactly these)::

    from dcvkit.tasks.detect3d import Detect3DConfig, train, evaluate, predict
    result = train(Detect3DConfig())                              # simulated LiDAR scenes
    evaluate(result.run_dir, data="kitti/training")               # any KITTI-layout folder
    predict(result.run_dir, "kitti/testing", out_dir="det3d/")    # BEV and camera pictures, KITTI result files

Batches are ``(points, counts, [boxes], [labels])`` (:mod:`dcvkit.data.lidar`); a model gives its loss
through ``model.loss(points, counts, boxes, labels)`` and its detections through ``model.predict(points,
counts, ...)`` (:mod:`dcvkit.models.detect3d.base`). Training augments each cloud with its boxes (mirror
across x, rotation about z, scale).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dcvkit.data.calib import image_boxes, observation_angle
from dcvkit.data.kitti import KittiFrame, Labels
from dcvkit.data.lidar import LidarFrames, collate
from dcvkit.engine import seed_everything
from dcvkit.errors import DataError
from dcvkit.io import load_checkpoint, write_json
from dcvkit.metrics import degenerate
from dcvkit.metrics.kitti import DIFFICULTIES, FrameObjects, kitti_ap
from dcvkit.models import create_model
from dcvkit.models.trained import load_run_model
from dcvkit.tasks import get_task
from dcvkit.tasks.common import (ModelLossTask, TrainResult, family_class, fill_defaults, fit_run, flag_notes,
                                 model_kwargs, start_config)
from dcvkit.tasks.configs import Detect3DConfig

#: what ``val_ap3d`` averages: 3-D AP|R40 at moderate difficulty over the classes with ground truth
HEADLINE = ("3d", "moderate", "AP_R40")
#: the pictures show detections scoring at least this (the metrics take every one)
DISPLAY_SCORE = 0.3


def load_splits(cfg: Detect3DConfig):
    from dcvkit.data.lidar import lidar_splits

    return lidar_splits(cfg.data, cfg.test_data, cfg.val_split, cfg.seed, cfg.frames, cfg.test_frames,
                        cfg.scene_seed, cfg.limit, progress=cfg.progress)


def augment(points: Tensor, counts: Tensor, boxes: list[Tensor], gen: torch.Generator
            ) -> tuple[Tensor, list[Tensor]]:
    """Each cloud with its boxes mirrored across the x axis (half of them), rotated about z by up to pi / 8 and
    scaled by 0.95-1.05 (PointPillars' global augmentation); padding rows are moved too and stay ignored."""
    b = len(points)
    flip = torch.rand(b, generator=gen) < 0.5
    angle = (torch.rand(b, generator=gen) * 2 - 1) * math.pi / 8
    scale = 0.95 + torch.rand(b, generator=gen) * 0.1
    flip, angle, scale = flip.to(points.device), angle.to(points.device), scale.to(points.device)
    p = points.clone()
    p[..., 1] = torch.where(flip[:, None], -p[..., 1], p[..., 1])
    c, s = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    x, y = p[..., 0].clone(), p[..., 1].clone()
    p[..., 0], p[..., 1] = c * x - s * y, s * x + c * y
    p[..., :3] *= scale[:, None, None]
    out = []
    for i, bx in enumerate(boxes):
        bx = bx.clone()
        if flip[i]:
            bx[:, 1], bx[:, 6] = -bx[:, 1], -bx[:, 6]
        x, y = bx[:, 0].clone(), bx[:, 1].clone()
        bx[:, 0], bx[:, 1] = c[i] * x - s[i] * y, s[i] * x + c[i] * y
        bx[:, 6] = torch.remainder(bx[:, 6] + angle[i] + math.pi, 2 * math.pi) - math.pi
        bx[:, :6] *= scale[i]
        out.append(bx)
    return p, out


def truth_objects(frame: KittiFrame) -> FrameObjects:
    lab = frame.labels if frame.labels is not None else Labels.empty()
    return FrameObjects(lab.names, lab.bbox, lab.boxes, lab.alpha, lab.occluded, lab.truncated)


def detection_labels(frame: KittiFrame, boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                     classes: list[str]) -> Labels:
    """Detections as KITTI result rows: their 2-D boxes (the projected corners) and alpha; those whose centre
    is not in the camera's view are dropped (KITTI labels only what the camera sees)."""
    seen = frame.calib.in_image(boxes[:, :3], frame.image_size) if len(boxes) else np.zeros(0, bool)
    boxes, labels, scores = boxes[seen], labels[seen], scores[seen]
    bbox, _ = image_boxes(boxes, frame.calib, frame.image_size)
    return Labels([classes[int(c)] for c in labels], np.zeros(len(boxes)), np.zeros(len(boxes), np.int64),
                  observation_angle(boxes), bbox, boxes, scores)


def detection_objects(lab: Labels) -> FrameObjects:
    return FrameObjects(lab.names, lab.bbox, lab.boxes, lab.alpha, scores=lab.scores)


def headline(ap: dict[str, Any], classes: list[str]) -> float:
    metric, diff, key = HEADLINE
    values = [ap[metric][c][diff][key] for c in classes if ap[metric][c][diff][key] is not None]
    return float(np.mean(values)) if values else 0.0


class Detect3DTask(ModelLossTask):
    """Trains a 3-D detector through ``model.loss``; KITTI 3-D and BEV AP on validation frames each epoch."""

    def __init__(self, model: Any, cfg: Detect3DConfig, classes: list[str], val: LidarFrames | None,
                 model_kwargs: dict[str, Any]):
        self.model, self.cfg, self.classes, self.val = model, cfg, classes, val
        self.model_kwargs = dict(model_kwargs)
        self.flips = torch.Generator().manual_seed(cfg.seed)
        self.augmenter = None
        self._sums: list[Tensor] = []
        self._dets: list[FrameObjects] = []

    def training_step(self, batch) -> tuple[Tensor, dict[str, Tensor]]:
        points, counts, boxes, labels = batch
        if self.cfg.augment:
            points, boxes = augment(points, counts, boxes, self.flips)
        out = self.model.loss(points, counts, boxes, labels)
        return out.pop("loss"), out

    def validation_step(self, batch) -> None:
        points, counts, boxes, labels = batch
        self.add_val_loss(self.model.loss(points, counts, boxes, labels)["loss"], len(points))
        if self.val is not None and len(self._dets) < min(self.cfg.val_frames, len(self.val)):
            for d in self.model.predict(points, counts, self.cfg.score_thresh, self.cfg.nms_iou):
                k = len(self._dets)
                if k >= min(self.cfg.val_frames, len(self.val)):
                    break
                frame = self.val.frame(k)
                self._dets.append(detection_objects(detection_labels(
                    frame, d.boxes.cpu().double().numpy(), d.labels.cpu().numpy(), d.scores.cpu().numpy(),
                    self.classes)))

    def validation_epoch_end(self) -> dict[str, float]:
        out = {"val_loss": self.val_loss()}
        if self._dets and self.val is not None:
            truths = [truth_objects(self.val.frame(k)) for k in range(len(self._dets))]
            ap = kitti_ap(truths, self._dets, self.classes, metrics=("bev", "3d"))
            out["val_ap3d"] = headline(ap, self.classes)
            bev = [ap["bev"][c]["moderate"]["AP_R40"] for c in self.classes]
            out["val_ap_bev"] = float(np.mean([v for v in bev if v is not None] or [0.0]))
            self._dets.clear()
        return out

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"task": "detect3d", "model": self.cfg.model, "model_kwargs": self.model_kwargs,
                "classes": self.classes, "post": {"score_thresh": self.cfg.score_thresh,
                                                  "nms_iou": self.cfg.nms_iou}}


def train(cfg: Detect3DConfig, run_dir: str | os.PathLike | None = None, splits=None) -> TrainResult:
    """Train a 3-D detector; writes a run directory (config.yaml, best.pt/last.pt, metrics.csv, curves.png
    and, with a test split, results.json: KITTI AP per metric, class and difficulty, AOS, ms per frame; bev.png,
    camera.png) and returns it."""
    from dcvkit.models.detect3d.base import Detector3D

    cfg, ckpt, run_dir = start_config(cfg, run_dir)
    spec = get_task("detect3d")
    model_kwargs(spec, cfg)
    cfg = fill_defaults(cfg, family_class(spec, cfg.model), Detector3D.defaults)
    seed_everything(cfg.seed, cfg.deterministic)
    splits = splits if splits is not None else load_splits(cfg)
    kw = model_kwargs(spec, cfg, num_classes=len(splits.classes))
    model = create_model(cfg.model, **kw)
    task = Detect3DTask(model, cfg, list(splits.classes), splits.val, kw)
    return fit_run(task, cfg, splits, run_dir, "detect3d", evaluate, ckpt, val_batch=cfg.batch_size,
                   test=cfg.test)


def load_detector3d(weights: str | os.PathLike, device: str = "cpu", ckpt: dict[str, Any] | None = None):
    return load_run_model(weights, "detect3d", "dcv detect3d train", device, ckpt)


def detect_frames(model, meta: dict[str, Any], data: LidarFrames, batch: int = 1
                  ) -> tuple[list[Labels], list[float]]:
    """Each frame's detections as KITTI result rows, and the seconds per frame (one cloud at a time: what a
    deployed detector sees)."""
    post = meta.get("post", {})
    dev = next(model.parameters()).device
    out, secs = [], []
    for i in range(len(data)):
        frame = data.frame(i)
        t0 = time.perf_counter()
        points, counts, _, _ = collate([frame], data.classes)
        (d,) = model.predict(points.to(dev), counts.to(dev), post.get("score_thresh", 0.05), post.get("nms_iou", 0.1))
        secs.append(time.perf_counter() - t0)
        out.append(detection_labels(frame, d.boxes.cpu().double().numpy(), d.labels.cpu().numpy(),
                                    d.scores.cpu().numpy(), list(meta["classes"])))
    return out, secs


def evaluate(weights: str | os.PathLike, *, data: Any = None, split: str = "test", device: str = "auto",
             out_dir: str | os.PathLike | None = None, progress: bool = False) -> dict[str, Any]:
    """KITTI AP|R40 and AP|R11 in 2-D, BEV and 3-D per class and difficulty, AOS, ms per frame, on a split (the
    run's own, or ``data``: loaded frames or a KITTI-layout folder). Writes results.json, bev.png and
    camera.png into ``out_dir``."""
    from dcvkit.config import from_dict
    from dcvkit.data.lidar import from_folder

    ckpt = load_checkpoint(weights, map_location="cpu")
    model, meta = load_detector3d(weights, device, ckpt)
    if isinstance(data, (str, os.PathLike)):
        data = from_folder(data)
    elif data is None:
        cfg = from_dict(Detect3DConfig, ckpt.get("config", {}), where=str(weights))
        data = getattr(load_splits(cfg), split)
        if data is None:
            raise DataError(f"{cfg.data}: has no '{split}' split (give --data with a KITTI-layout folder)")
    classes = list(meta["classes"])
    dets, secs = detect_frames(model, meta, data)
    truths = [truth_objects(data.frame(i)) for i in range(len(data))]
    ap = kitti_ap(truths, [detection_objects(d) for d in dets], classes)
    objects = sum(len(t.names) for t in truths)
    out: dict[str, Any] = {
        "split": split, "model": meta["model"], "frames": len(data), "objects": objects,
        "detections_per_frame": float(np.mean([len(d) for d in dets])) if dets else 0.0,
        "ms_per_frame": 1000 * float(np.mean(secs)) if secs else 0.0, "ap": ap,
        "ap3d_moderate": {c: ap["3d"][c]["moderate"]["AP_R40"] for c in classes},
        "device": str(next(model.parameters()).device), "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters())}
    nothing = degenerate.no_boxes(sum(len(d) for d in dets), len(dets))
    flag_notes(out, small_class_notes(ap, classes),
               degenerate=nothing and f"{nothing} (train longer, or lower --score-thresh)")
    if out_dir is not None:
        from dcvkit.viz.detect3d import draw_bev, draw_camera

        out_dir = Path(out_dir)
        write_json(out_dir / "results.json", out)
        frame, shown = data.frame(0), dets[0].select(dets[0].scores >= DISPLAY_SCORE)
        draw_bev(frame.points, frame.labels, shown, out_dir / "bev.png", title=f"frame {frame.id}")
        if frame.image is not None or frame.scene_seed is not None:
            draw_camera(camera_image(frame), frame.calib, frame.labels, shown, out_dir / "camera.png")
    return out


def camera_image(frame: KittiFrame) -> np.ndarray:
    """The frame's camera image: its image_2 file, else (a simulated frame) rendered."""
    if frame.image is not None:
        from PIL import Image

        with Image.open(frame.image) as im:
            return np.asarray(im.convert("RGB"))
    from dcvkit.data.lidar_scenes import render

    return render(frame)


def small_class_notes(ap: dict[str, Any], classes: list[str]) -> list[str]:
    """The classes with too few objects for their AP to mean much, in words."""
    notes = []
    for c in classes:
        n = ap["3d"][c]["moderate"]["gt"]
        if 0 < n < 50:
            notes.append(f"{c}: only {n} moderate objects; its AP is uncertain at this size")
    return notes


def predict(weights: str | os.PathLike, source: str | os.PathLike, out_dir: str | os.PathLike,
            device: str = "auto", min_score: float = DISPLAY_SCORE, limit: int | None = None) -> list[dict[str, Any]]:
    """Detections on the frames of a KITTI-layout folder (labels not needed): per frame ``<id>_bev.png`` (the
    points from above with the boxes), ``<id>_camera.png`` (the boxes projected onto image_2, when there is
    one) and ``label_2/<id>.txt`` (KITTI result rows, all detections with their scores); pictures show those
    scoring at least ``min_score``."""
    from dcvkit.data.kitti import KittiFolder, write_labels
    from dcvkit.viz.detect3d import draw_bev, draw_camera

    model, meta = load_detector3d(weights, device)
    folder = KittiFolder.open(source)
    frames = LidarFrames(list(meta["classes"]), None, folder, list(range(len(folder)))[:limit], str(source))
    out_dir = Path(out_dir)
    rows = []
    for i in range(len(frames)):
        frame = frames.frame(i)
        (dets,), (sec,) = detect_frames(model, meta, frames.subset([i]))
        write_labels(out_dir / "label_2" / f"{frame.id}.txt", dets, frame.calib)
        shown = dets.select(dets.scores >= min_score)
        draw_bev(frame.points, frame.labels, shown, out_dir / f"{frame.id}_bev.png", title=f"frame {frame.id}")
        if frame.image is not None:
            draw_camera(camera_image(frame), frame.calib, frame.labels, shown, out_dir / f"{frame.id}_camera.png")
        rows.append({"frame": frame.id, "detections": len(dets), "shown": len(shown), "ms": round(1000 * sec, 2),
                     "classes": {c: shown.names.count(c) for c in meta["classes"]}})
    write_json(out_dir / "detections.json", rows)
    return rows


__all__ = ["Detect3DConfig", "Detect3DTask", "train", "evaluate", "predict", "load_splits", "load_detector3d",
           "augment", "detect_frames", "DIFFICULTIES"]
