"""Pose estimation: keypoints of articulated figures (or people), scored by COCO's OKS AP.

Python API (the CLI calls exactly these)::

    from dcvkit.tasks.pose import PoseConfig, train, evaluate, predict
    result = train(PoseConfig(model="yolo_pose"))               # generated figures, COCO's 17 keypoints
    evaluate(result.run_dir)                                    # OKS AP, AP50, AP75, AR, PCK@0.2, ms/image
    predict(result.run_dir, ["dance.png"], out_dir="poses/")    # skeletons drawn + COCO results JSON

Batches are ``(uint8 images, [boxes], [keypoints], [areas])`` (:mod:`dcvkit.data.pose`); a pose model gives
its loss through ``model.loss(images, boxes, keypoints, areas)`` and its people through
``model.detect_pose(images, score_thresh, nms_iou)``. Horizontal flips mirror the keypoints and swap left and
right through the keypoint set's flip index (``augment.functional.flip_keypoints``).

The models (:mod:`dcvkit.models.pose`) say what they are through their class: ``needs_boxes`` (top-down:
``heatmap`` estimates keypoints inside boxes it is given: the ground truth's for validation and, by default,
the test results, or another pose run's people with ``boxes=RUN``) and ``defaults`` (epochs, batch size).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from dcvkit.augment import functional as aug
from dcvkit.data import DataSplits
from dcvkit.data.keypoints import KeypointSchema
from dcvkit.engine import seed_everything
from dcvkit.errors import ConfigError, DataError
from dcvkit.io import load_checkpoint, write_json
from dcvkit.metrics.pose import keypoint_ap, pck
from dcvkit.models import create_model
from dcvkit.models.normalise import Normaliser
from dcvkit.models.trained import load_run_model
from dcvkit.tasks import get_task
from dcvkit.tasks.common import (ModelLossTask, TrainResult, family_class, fill_defaults, fit_run, model_kwargs,
                                 start_config)
from dcvkit.tasks.configs import PoseConfig


def model_class(cfg: PoseConfig) -> type:
    """The class of ``cfg.model``'s models: whether it needs boxes, its training defaults."""
    return family_class(get_task("pose"), cfg.model)


def resolve_defaults(cfg: PoseConfig) -> PoseConfig:
    """Fill the options the config leaves to the model (epochs, batch size, mosaic, affine) from its class's
    ``defaults``."""
    from dcvkit.models.pose.base import DEFAULTS

    return fill_defaults(cfg, model_class(cfg), DEFAULTS)


def load_splits(cfg: PoseConfig) -> DataSplits:
    from dcvkit.data.splits import pose_splits

    return pose_splits(cfg.data, test_data=cfg.test_data, val_split=cfg.val_split, seed=cfg.seed,
                       img_size=cfg.img_size, limit=cfg.limit, figures=cfg.figures, test_figures=cfg.test_figures,
                       figure_seed=cfg.figure_seed, data_dir=cfg.data_dir, download=cfg.download,
                       progress=cfg.progress)


def schema_meta(s: KeypointSchema) -> dict[str, Any]:
    return {"names": list(s.names), "skeleton": [list(e) for e in s.skeleton], "flip_idx": list(s.flip_idx),
            "sigmas": list(s.sigmas)}


def schema_from_meta(meta: dict[str, Any], where: str) -> KeypointSchema:
    from dcvkit.errors import CheckpointError

    k = meta.get("keypoints")
    try:
        return KeypointSchema(tuple(str(n) for n in k["names"]), tuple((int(a), int(b)) for a, b in k["skeleton"]),
                              tuple(int(i) for i in k["flip_idx"]), tuple(float(v) for v in k["sigmas"])).check(where)
    except (TypeError, KeyError, ValueError, DataError) as e:
        raise CheckpointError(f"{where}: meta 'keypoints' is not a keypoint set ({str(e)[:120]}); the checkpoint is "
                              "damaged or not one dcvkit wrote") from None


class PoseTask(ModelLossTask):
    """Trains a pose model through ``model.loss``; OKS AP on validation images each epoch."""

    def __init__(self, model: Any, cfg: PoseConfig, schema: KeypointSchema, classes: list[str],
                 normaliser: Normaliser, model_kwargs: dict[str, Any]):
        self.model, self.cfg, self.schema, self.classes = model, cfg, schema, classes
        self.normaliser, self.augmenter = normaliser, None
        self.model_kwargs = dict(model_kwargs)
        self.flips = torch.Generator().manual_seed(cfg.seed)
        self._sums: list[Tensor] = []
        self._gt: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pred: list[tuple[np.ndarray, np.ndarray]] = []

    def training_step(self, batch) -> tuple[Tensor, dict[str, Tensor]]:
        images, boxes, keypoints, areas = batch
        if self.cfg.mosaic:
            apply = torch.rand(len(images), generator=self.flips) < self.cfg.mosaic
            images, boxes, keypoints, areas = aug.mosaic_keypoints(images, boxes, keypoints, areas, apply, self.flips)
        if self.cfg.affine:
            images, boxes, keypoints, areas = aug.random_affine_keypoints(images, boxes, keypoints, areas,
                                                                          self.cfg.affine, 0.1, self.flips)
        if self.cfg.hflip:
            flip, images, boxes = self.random_flip(images, boxes)
            keypoints = aug.flip_keypoints(keypoints, flip, images.shape[-1], self.schema.flip_idx)
        out = self.model.loss(self.preprocess(images), boxes, keypoints, areas)
        return out.pop("loss"), out

    def validation_step(self, batch) -> None:
        images, boxes, keypoints, areas = batch
        x = self.preprocess(images)
        out = self.model.loss(x, boxes, keypoints, areas)
        self.add_val_loss(out["loss"], len(images))
        if len(self._pred) < self.cfg.val_images:
            given = boxes if self.model.needs_boxes else None  # top-down: validated on the true boxes
            for d, b, k, a in zip(self.model.detect_pose(x, self.cfg.score_thresh, self.cfg.nms_iou, boxes=given),
                                  boxes, keypoints, areas):
                self._pred.append((d.keypoints.cpu().numpy(), d.scores.cpu().numpy()))
                self._gt.append((k.numpy(), b.numpy(), a.numpy()))

    def validation_epoch_end(self) -> dict[str, float]:
        out = {"val_loss": self.val_loss()}
        if self._pred:
            r = keypoint_ap([g[0] for g in self._gt], [g[1] for g in self._gt], [g[2] for g in self._gt],
                            [p[0] for p in self._pred], [p[1] for p in self._pred], self.schema.names,
                            self.schema.sigmas)
            out.update(val_ap=r["ap"], val_ap50=r["ap50"])
            self._gt.clear()
            self._pred.clear()
        return out

    def checkpoint_meta(self) -> dict[str, Any]:
        c = self.cfg
        return {"task": "pose", "model": c.model, "model_kwargs": self.model_kwargs, "classes": self.classes,
                **self.normalisation_meta(), "img_size": list(self.model.img_size),
                "keypoints": schema_meta(self.schema), "post": {"score_thresh": c.score_thresh, "nms_iou": c.nms_iou}}


def build_model(name: str, kwargs: dict[str, Any], schema: KeypointSchema):
    """The model, told its keypoint set's sigmas (the OKS loss needs them; the checkpoint keeps them in its
    meta, not among the builder's options)."""
    model = create_model(name, **kwargs)
    if hasattr(model, "sigmas"):
        model.sigmas = torch.tensor(schema.sigmas, dtype=torch.float32)
    return model


def train(cfg: PoseConfig, run_dir: str | os.PathLike | None = None, splits: DataSplits | None = None
          ) -> TrainResult:
    """Train a pose model; writes a run directory (config.yaml, best.pt/last.pt, metrics.csv, curves.png and,
    with a test split, results.json: OKS AP, PCK, ms per image) and returns it."""
    cfg, ckpt, run_dir = start_config(cfg, run_dir)
    spec = get_task("pose")
    model_kwargs(spec, cfg)
    cfg = resolve_defaults(cfg)
    box_weights(cfg.boxes, model_class(cfg).needs_boxes, cfg.model)  # refused now, not after the training
    seed_everything(cfg.seed, cfg.deterministic)
    splits = splits if splits is not None else load_splits(cfg)
    if splits.train.objects == 0:
        raise DataError(f"{cfg.data}: the training images have no people to learn from")
    schema = splits.train.schema
    kw = model_kwargs(spec, cfg, num_classes=1, num_keypoints=len(schema), in_chans=splits.channels,
                      img_size=list(splits.img_size))
    model = build_model(cfg.model, kw, schema)
    mean, std = (ckpt["meta"]["mean"], ckpt["meta"]["std"]) if ckpt else splits.train.mean_std()
    task = PoseTask(model, cfg, schema, list(splits.classes), Normaliser(mean, std), kw)
    result = fit_run(task, cfg, splits, run_dir, "pose", evaluate, ckpt, val_batch=cfg.batch_size, test=False)
    best = result.run_dir / "best.pt"
    if cfg.test and splits.test is not None and best.exists():
        result.test = evaluate(best, data=splits.test, split=splits.test_split, device=cfg.device,
                               out_dir=result.run_dir, boxes=cfg.boxes)
    return result


def load_pose_model(weights: str | os.PathLike, device: str = "cpu", ckpt: dict[str, Any] | None = None):
    """A trained pose model (eval mode, batch norms folded), its meta and its keypoint set."""
    model, meta = load_run_model(weights, "pose", "dcv pose train", device, ckpt)
    schema = schema_from_meta(meta, str(weights))
    if len(schema) != meta["model_kwargs"].get("num_keypoints", len(schema)):
        raise ConfigError(f"{weights}: meta names {len(schema)} keypoints, the model has "
                          f"{meta['model_kwargs']['num_keypoints']}")
    if hasattr(model, "fuse"):
        model.fuse()
    return model, meta, schema


def _detect(model, meta: dict[str, Any], images: Tensor, boxes: Sequence[Tensor] | None = None,
            box_scores: Sequence[Tensor] | None = None) -> tuple[list[Any], list[float]]:
    """People per image (one at a time, as a deployed model sees them) and the seconds of each; a top-down
    model estimates them in ``boxes`` (per image, scored ``box_scores``)."""
    prep = Normaliser.from_meta(meta)
    dev = next(model.parameters()).device
    out, secs = [], []
    for i in range(len(images)):
        given = {} if boxes is None else {"boxes": [boxes[i]], "box_scores": None if box_scores is None
                                          else [box_scores[i]]}
        t0 = time.perf_counter()
        d = model.detect_pose(prep(images[i:i + 1].to(dev)), meta["post"]["score_thresh"], meta["post"]["nms_iou"],
                              **given)[0]
        secs.append(time.perf_counter() - t0)
        out.append(d)
    return out, secs


def box_weights(spec: str | None, needs_boxes: bool, model: str) -> Path | None:
    """The weights of the pose run named by ``--boxes`` (None for ``gt``); an error for a model that finds
    its own people or a path that is not a run."""
    if spec in (None, "gt"):
        return None
    if not needs_boxes:
        raise ConfigError(f"--boxes {spec}: {model} finds its own people; --boxes is for top-down models (heatmap)")
    path = Path(spec)
    weights = path / "best.pt" if path.is_dir() else path
    if not weights.is_file():
        raise ConfigError(f"--boxes {spec}: neither 'gt' nor a pose run directory (no best.pt there)")
    return weights


class BoxSource:
    """Where a top-down model's boxes come from: ``gt`` (the data's own) or a pose run whose people are used
    (its model run on the same images first; its seconds are counted with the keypoints')."""

    def __init__(self, spec: str | None, model: Any, meta: dict[str, Any], device: str):
        needs = getattr(model, "needs_boxes", False)
        weights = box_weights(spec, needs, meta["model"])
        self.spec = (spec or "gt") if needs else "own"
        self.finder = None
        if weights is not None:
            self.finder, self.finder_meta, _ = load_pose_model(weights, device)
            if getattr(self.finder, "needs_boxes", False):
                raise ConfigError(f"--boxes {spec}: that run is top-down too ({self.finder_meta['model']}); give a "
                                  "run that finds people (yolo_pose, keypoint_rcnn)")
            if list(self.finder_meta["img_size"]) != list(meta["img_size"]):
                raise ConfigError(f"--boxes {spec}: its images are {self.finder_meta['img_size']}, the model's "
                                  f"{meta['img_size']}; train both at one --img-size")

    def __call__(self, images: Tensor, true_boxes: Sequence[Tensor] | None
                 ) -> tuple[list[Tensor] | None, list[Tensor] | None, list[float]]:
        """Boxes and scores per image (None: the model finds its own) and the seconds spent finding them."""
        if self.spec == "own":
            return None, None, [0.0] * len(images)
        if self.finder is None:
            if true_boxes is None:
                return None, None, [0.0] * len(images)  # no boxes known: each whole image is one person
            return list(true_boxes), None, [0.0] * len(images)
        found, secs = _detect(self.finder, self.finder_meta, images)
        return [d.boxes for d in found], [d.scores for d in found], secs


def evaluate(weights: str | os.PathLike, *, data: Any = None, split: str = "test", device: str = "auto",
             out_dir: str | os.PathLike | None = None, progress: bool = False, backend: str = "faster_coco_eval",
             boxes: str | None = None) -> dict[str, Any]:
    """OKS AP / AP50 / AP75 / AR, PCK@0.2, per-keypoint error and ms per image of a trained pose model on a
    split (the run's own, or ``data``: loaded data or a pose dataset's path), in original pixels. A top-down
    model's people are the ground truth's boxes (``boxes="gt"``, the default) or a pose run's (``boxes=RUN``;
    its time counted in ms_per_image). Writes results.json and predictions.png into ``out_dir``."""
    from dcvkit.config import from_dict
    from dcvkit.data.keypoints import read_pose
    from dcvkit.data.pose import PoseTensors, from_annotations, to_original

    ckpt = load_checkpoint(weights, map_location="cpu")
    model, meta, schema = load_pose_model(weights, device, ckpt)
    size = tuple(meta["img_size"])
    if isinstance(data, (str, os.PathLike)):
        data = from_annotations(read_pose(data, split), size)
    elif data is None:
        cfg = from_dict(PoseConfig, ckpt.get("config", {}), where=str(weights))
        data = getattr(load_splits(cfg), split)
        if data is None:
            raise DataError(f"{cfg.data}: has no '{split}' split (give --data with pose annotations)")
    assert isinstance(data, PoseTensors)
    if data.schema.names != schema.names:
        raise DataError(f"the data's keypoints {list(data.schema.names)} differ from the model's {list(schema.names)}")
    source = BoxSource(boxes, model, meta, device)
    gts, preds, secs = [], [], []
    for start in range(0, len(data), 32):
        chunk = data.images[start:start + 32]
        given, scores, s0 = source(chunk, data.boxes[start:start + 32])
        d, s = _detect(model, meta, chunk, given, scores)
        secs += [a + b for a, b in zip(s0, s)]
        for j, det in enumerate(d):
            i = start + j
            p = data.placement(i)
            gts.append(data.original(i))
            b, k, _ = to_original(p, det.boxes.cpu().numpy(), det.keypoints.cpu().numpy())
            preds.append((b, k, det.scores.cpu().numpy()))
    gk, gb, ga = [g[1] for g in gts], [g[0] for g in gts], [g[2] for g in gts]
    r = keypoint_ap(gk, gb, ga, [p[1] for p in preds], [p[2] for p in preds], schema.names, schema.sigmas, backend)
    r.update(pck(gk, gb, ga, [p[1] for p in preds], schema.names, schema.sigmas))
    r.update(split=split, model=meta["model"], boxes=source.spec, ms_per_image=1000 * float(np.mean(secs)),
             device=str(next(model.parameters()).device), threads=torch.get_num_threads(),
             parameters=sum(p.numel() for p in model.parameters()))
    if r["objects"] < 50:
        r["warning"] = f"only {r['objects']} people: the AP is uncertain at this size"
    if out_dir is not None:
        from dcvkit.viz.pose import plot_pose_grid

        out_dir = Path(out_dir)
        write_json(out_dir / "results.json", r)
        shown = range(min(8, len(data)))
        plot_pose_grid(data.images[:8], [preds[i][1] for i in shown], [data.placement(i) for i in shown], schema,
                       out_dir / "predictions.png")
    return r


def predict(weights: str | os.PathLike, images: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
            device: str = "auto", score_thresh: float | None = None, boxes: str | None = None
            ) -> list[dict[str, Any]]:
    """Keypoints of the people in image files of any size (letterboxed to the training size, mapped back):
    ``<stem>_pose.png`` (skeletons drawn on the original image) per image and ``predictions.json`` (COCO
    keypoint results: file, keypoints [x, y, v, ...] with v the presence probability, bbox, score). A top-down
    model takes its people from the pose run ``boxes``, or sees each whole image as one person."""
    from PIL import Image

    from dcvkit.data.letterbox import read_letterboxed
    from dcvkit.data.pose import to_original
    from dcvkit.viz.pose import draw_poses

    if not images:
        raise ConfigError("give at least one image file")
    model, meta, schema = load_pose_model(weights, device)
    if score_thresh is not None:
        meta = {**meta, "post": {**meta["post"], "score_thresh": score_thresh}}
    source = BoxSource(boxes, model, meta, device)
    out_dir = Path(out_dir)
    rows: list[dict[str, Any]] = []
    for path in map(Path, images):
        if not path.is_file():
            raise DataError(f"{path}: no such image file")
        arr, p = read_letterboxed(path, 3, tuple(meta["img_size"]))
        x = torch.from_numpy(np.ascontiguousarray(arr))[None]
        given, scores, _ = source(x, None)
        (det,), _ = _detect(model, meta, x, given, scores)
        b, k, _ = to_original(p, det.boxes.cpu().numpy(), det.keypoints.cpu().numpy())
        with Image.open(path) as im:
            original = np.asarray(im.convert("RGB"))
        draw_poses(original, k, schema, out_dir / f"{path.stem}_pose.png", scores=det.scores.cpu().numpy())
        for bb, kk, s in zip(b.tolist(), k, det.scores.tolist()):
            rows.append({"file": str(path), "category_id": 1, "score": round(float(s), 4),
                         "bbox": [round(bb[0], 2), round(bb[1], 2), round(bb[2] - bb[0], 2), round(bb[3] - bb[1], 2)],
                         "keypoints": [round(float(v), 3) for v in kk.reshape(-1)]})
    write_json(out_dir / "predictions.json", rows)
    return rows


__all__ = ["PoseConfig", "PoseTask", "train", "evaluate", "predict", "load_splits", "load_pose_model",
           "resolve_defaults", "model_class", "BoxSource"]
