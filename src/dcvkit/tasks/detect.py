"""Object detection with the course's lineage: ``sliding_window`` (brute force), ``rcnn`` (selective search
+ a CNN per warped proposal + SVMs), ``fast_rcnn`` (one CNN pass + RoI pooling), ``faster_rcnn`` (+ a region
proposal network), ``yolo_v1`` (one pass, S x S grid regressing B boxes) and ``yolo`` (anchor-free grid,
IoU-aware loss, mosaic).

Python API (the CLI calls exactly these)::

    from dcvkit.tasks.detect import DetectConfig, train, evaluate, predict
    result = train(DetectConfig(model="fast_rcnn"))          # FashionScenes: 10 item classes
    evaluate(result.run_dir)                                 # COCO mAP, per-class AP, seconds per image
    predict(result.run_dir, ["street.png"], out_dir="boxes/")   # annotated PNGs + predictions.json

Batches are ``(uint8 images, [boxes], [labels], [proposals])`` (:mod:`dcvkit.data.detection`); every detector
gives its own loss through one face, ``model.loss(images, boxes, labels, proposals)``
(:class:`~dcvkit.models.detect.base.Detector`). The region classifiers train on ``rois_per_image`` regions
per image sampled from the proposals and the ground truth (Fast R-CNN's recipe); Faster R-CNN adds its
RPN's loss and samples from the RPN's proposals; YOLO scores every grid cell. A detector with a second
stage (``rcnn``: its SVMs and ridge box regressors on the CNN's features) trains it after the network.
Proposals are computed (and attached to the data) only for detectors whose ``proposal_method`` is external
(selective search, sliding windows).

Whatever depends on the detector is read from its family's class (:class:`Detector`'s ``kind``,
``proposal_method``, ``defaults``, ``second_stage``, ``export_outputs``), so the task never branches on a
model's name and a detector registered from outside the package trains here as it is.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from dcvkit.augment import functional as aug
from dcvkit.config import TrainConfig, from_dict, to_dict
from dcvkit.data import DataSplits
from dcvkit.data.detection import DetectionFiles, DetectionTensors
from dcvkit.data.letterbox import Placement
from dcvkit.data.splits import SCENES
from dcvkit.engine import build_optimizer, param_groups, seed_everything
from dcvkit.engine.distributed import world
from dcvkit.errors import ConfigError, DataError
from dcvkit.io import load_checkpoint, save_checkpoint, write_json
from dcvkit.metrics import degenerate
from dcvkit.metrics.detection import coco_eval
from dcvkit.models import create_model, list_models, model_entry
from dcvkit.models.detect.base import EXTERNAL_PROPOSALS, Detector
from dcvkit.models.detect.postprocess import Detections, PostProcess
from dcvkit.models.detect.proposals import build_proposer, propose_all
from dcvkit.models.detect.targets import RoISampler
from dcvkit.models.normalise import Normaliser
from dcvkit.models.trained import load_run_model
from dcvkit.tasks import get_task
from dcvkit.tasks.common import (ImageTask, TrainResult, family_class, fit_run, flag_notes, model_kwargs,
                                 start_config)
from dcvkit.tasks.configs import DetectConfig


# --- data ------------------------------------------------------------------------------------------


def load_splits(cfg: DetectConfig) -> DataSplits:
    """The run's train / val / test splits: FashionScenes or the user's annotations (any format)."""
    from dcvkit.data.splits import detection_splits

    return detection_splits(cfg.data, test_data=cfg.test_data, val_split=cfg.val_split, seed=cfg.seed,
                            img_size=cfg.img_size, limit=cfg.limit, scenes=cfg.scenes, test_scenes=cfg.test_scenes,
                            scene_seed=cfg.scene_seed, data_dir=cfg.data_dir, download=cfg.download,
                            memory_mb=cfg.memory_mb)


def proposal_method(cfg: DetectConfig, model: Detector) -> str:
    if cfg.proposals == "auto":
        return model.proposal_method
    if not model.needs_proposals:
        raise ConfigError(f"--proposals {cfg.proposals}: {cfg.model} makes its own regions ({model.proposal_method}); "
                          f"leave --proposals at auto")
    return cfg.proposals


def proposer_for(cfg: DetectConfig, model: Detector):
    """The external proposer of ``model`` (None for detectors that find regions themselves)."""
    method = proposal_method(cfg, model)
    if method not in EXTERNAL_PROPOSALS:
        return None
    return build_proposer(method, cfg.ss_mode, cfg.max_proposals, cfg.windows())


def with_proposals(splits: DataSplits, proposer, progress: bool = False) -> DataSplits:
    """``splits`` with the train and validation images' proposals attached (new objects; the images are
    shared, so several detectors can train on one loaded dataset). No proposer: ``splits`` as they are."""
    if proposer is None:
        return splits
    parts = {}
    for name in ("train", "val"):
        part = getattr(splits, name)
        if isinstance(part, DetectionFiles):
            raise DataError(f"{type(proposer).__name__} proposals are computed for images held in memory, and the "
                            f"{name} images are streamed (decoded, they exceed --memory-mb); raise --memory-mb or "
                            "use --limit, or train a detector that finds its own regions (faster_rcnn, yolo_n)")
        if part is not None:
            ps = propose_all(part.images, proposer, progress=progress, desc=f"{type(proposer).__name__}: {name} images")
            parts[name] = dataclasses.replace(part, proposals=ps.boxes)
    return dataclasses.replace(splits, **parts)


# --- the task ---------------------------------------------------------------------------------------


class DetectionTask(ImageTask):
    """Trains any :class:`Detector` through ``model.loss``; detection mAP on validation images (when
    ``monitor_map``: the family validates by mAP, or the run monitors it)."""

    find_unused_parameters = True  # DistributedDataParallel: not every detector's loss uses every parameter

    def __init__(self, model: Detector, cfg: DetectConfig, classes: list[str], normaliser: Normaliser,
                 model_kwargs: dict[str, Any], monitor_map: bool):
        self.model, self.cfg, self.classes = model, cfg, classes
        self.normaliser, self.augmenter = normaliser, None
        self.model_kwargs = dict(model_kwargs)
        self.sampler = RoISampler(per_image=cfg.rois_per_image, fg_fraction=cfg.fg_fraction, fg_iou=cfg.fg_iou,
                                  bg_iou=cfg.bg_iou)
        self.monitor_map = monitor_map
        self._gen = torch.Generator().manual_seed(cfg.seed)
        self._sums: dict[str, list[Tensor]] = {}
        self._gt: list[tuple[Tensor, Tensor]] = []
        self._pred: list[Detections] = []
        self._notes: list[str] = []

    def generators(self) -> dict[str, torch.Generator]:
        return {**super().generators(), "sampler": self._gen}

    def configure_optimizers(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        return build_optimizer(param_groups([p for p in self.model.parameters() if p.requires_grad],
                                            cfg.weight_decay), cfg)

    def _loss(self, x: Tensor, boxes: list[Tensor], labels: list[Tensor], proposals: list[Tensor]
              ) -> dict[str, Tensor]:
        props = proposals if self.model.needs_proposals else None
        return self.model.loss(x, boxes, labels, props, sampler=self.sampler, box_weight=self.cfg.box_weight)

    def training_step(self, batch) -> tuple[Tensor, dict[str, Tensor]]:
        images, boxes, labels, proposals = batch
        if self.cfg.mosaic:  # resolve_defaults allows it only for detectors that take mosaics
            apply = torch.rand(len(images), generator=self._gen) < self.cfg.mosaic
            images, boxes, labels = aug.mosaic(images, boxes, labels, apply, self._gen)
        if self.cfg.affine:
            images, boxes, labels = aug.random_affine(images, boxes, labels, self.cfg.affine, 0.1, self._gen)
        if self.cfg.hflip:  # images, boxes and proposals together
            flip = torch.rand(len(images)) < 0.5
            no, size = torch.zeros_like(flip), (images.shape[-2], images.shape[-1])
            images = aug.flip(images, flip, no)
            boxes, proposals = aug.flip_boxes(boxes, flip, no, size), aug.flip_boxes(proposals, flip, no, size)
        out = self._loss(self.preprocess(images), boxes, labels, proposals)
        return out.pop("loss"), out

    def validation_step(self, batch) -> None:
        images, boxes, labels, proposals = batch
        x = self.preprocess(images)
        with torch.random.fork_rng(devices=[]):  # the same validation regions every epoch
            torch.manual_seed(len(self._sums.get("loss", [])))
            out = self._loss(x, boxes, labels, proposals)
        n = float(len(images))
        for k, v in out.items():
            if k in ("loss", "acc"):  # the other parts are logged in training
                self._sums.setdefault(k, []).append(torch.stack([v.detach().float() * n, v.new_tensor(n)]))
        if self.monitor_map and len(self._pred) < self.cfg.val_images:
            dets = self.model.detect(x, proposals if self.model.needs_proposals else None, self.cfg.post())
            self._pred.extend(d.to("cpu") for d in dets)
            self._gt.extend((b.cpu(), lab.cpu()) for b, lab in zip(boxes, labels))

    def validation_epoch_end(self) -> dict[str, float]:
        out = {}
        for k, rows in self._sums.items():
            total, n = torch.stack(rows).sum(0).tolist()
            out[f"val_{k}"] = total / n
        self._sums.clear()
        self._notes = []
        if self._pred:
            self._notes = [degenerate_note(sum(len(d) for d in self._pred), len(self._pred), self.cfg.post())]
            r = coco_eval([g[0] for g in self._gt], [g[1] for g in self._gt], [d.boxes for d in self._pred],
                          [d.scores for d in self._pred], [d.labels for d in self._pred], self.classes)
            out.update(val_map50=r["map50"], val_map=r["map"])
            self._gt.clear()
            self._pred.clear()
        return out

    def validation_notes(self) -> list[str]:
        return self._notes

    def checkpoint_meta(self) -> dict[str, Any]:
        c = self.cfg
        return {"task": "detect", "model": c.model, "model_kwargs": self.model_kwargs, "classes": self.classes,
                **self.normalisation_meta(), "img_size": list(self.model.img_size),
                "proposals": {"method": proposal_method(c, self.model),
                              "ss_mode": c.ss_mode, "max_proposals": c.max_proposals,
                              "window_sizes": c.window_sizes, "window_ratios": c.window_ratios,
                              "window_stride": c.window_stride},
                "post": dataclasses.asdict(c.post())}


def degenerate_note(detections: int, images: int, post: PostProcess) -> str:
    """No box in any image (:func:`dcvkit.metrics.degenerate.no_boxes`), with what to change; else empty."""
    note = degenerate.no_boxes(detections, images)
    return (f"{note} at --score-thresh {post.score_thresh:g} (train longer, lower --score-thresh, and check "
            "that the annotations' boxes lie on the objects)") if note else ""


def detector_class(cfg: DetectConfig) -> type[Detector]:
    """The class of ``cfg.model``'s detectors: what the family says about itself (kind, defaults, ...)."""
    return family_class(get_task("detect"), cfg.model)


def resolve_defaults(cfg: DetectConfig) -> DetectConfig:
    """Fill the options the config leaves to the detector (monitor, regions per image, epochs, batch size,
    mosaic) from its family's ``defaults``; refuse a mosaic for a detector trained on precomputed proposals."""
    family = detector_class(cfg)
    d = {**Detector.defaults, **family.defaults}  # a family from outside may name only some
    changes: dict[str, Any] = {}
    if cfg.monitor == "auto":
        changes["monitor"] = d["monitor"]
    for name in ("rois_per_image", "epochs", "batch_size", "mosaic", "affine", "ema"):
        if getattr(cfg, name) is None:
            changes[name] = d[name]
    if (cfg.mosaic or cfg.affine) and not family.takes_mosaic():
        takes = [m for m in list_models("detect") if model_entry(m).model_class.takes_mosaic()]
        raise ConfigError(f"--mosaic/--affine: {cfg.model} trains on precomputed proposals, which they would cut; "
                          "use them "
                          f"with a detector that finds its own regions ({', '.join(takes)})")
    return dataclasses.replace(cfg, **changes)


# --- train / evaluate / predict ------------------------------------------------------------------------


def train(cfg: DetectConfig, run_dir: str | os.PathLike | None = None, splits: DataSplits | None = None
          ) -> TrainResult:
    """Train a detector; writes a run directory (config.yaml, best.pt/last.pt, metrics.csv, curves.png,
    results.json with COCO mAP and seconds per image, pr_curves.png, predictions.png) and returns it."""
    cfg, ckpt, run_dir = start_config(cfg, run_dir)
    task_spec = get_task("detect")
    model_kwargs(task_spec, cfg)  # the model is a detector and takes the options given (names the others)
    cfg = resolve_defaults(cfg)
    seed_everything(cfg.seed, cfg.deterministic)
    splits = splits if splits is not None else load_splits(cfg)
    if splits.train.objects == 0:
        raise DataError(f"{cfg.data}: the training images have no objects to learn from")
    kw = model_kwargs(task_spec, cfg, num_classes=splits.num_classes, in_chans=splits.channels,
                      img_size=list(splits.img_size))
    model = create_model(cfg.model, **kw)
    mean, std = (ckpt["meta"]["mean"], ckpt["meta"]["std"]) if ckpt else splits.train.mean_std()
    splits = with_proposals(splits, proposer_for(cfg, model), cfg.progress)
    monitor_map = type(model).defaults["monitor"].startswith("val_map") or cfg.monitor.startswith("val_map")
    task = DetectionTask(model, cfg, list(splits.classes), Normaliser(mean, std), kw, monitor_map=monitor_map)
    result = fit_run(task, cfg, splits, run_dir, "detect", evaluate, ckpt, val_batch=cfg.batch_size, test=False)
    if not world().is_main:  # distributed training: rank 0 fits a second stage and tests
        return result
    best = result.run_dir / "best.pt"
    if best.exists():
        second_stage(best, splits.train, cfg)
    if cfg.test and splits.test is not None and best.exists():
        result.test = evaluate(best, data=splits.test, split=splits.test_split, device=cfg.device,
                               out_dir=result.run_dir, progress=cfg.progress)
    return result


def second_stage(weights: Path, data: DetectionTensors, cfg: DetectConfig) -> dict[str, Any] | None:
    """The detector's training after the network's (:meth:`Detector.second_stage`: R-CNN's SVMs), on the
    trained run's best.pt, saved into it; None for detectors without one."""
    state = load_checkpoint(weights)
    model, meta = load_detector(weights, "cpu", state)
    extra = model.second_stage(data, Normaliser.from_meta(meta), to_dict(cfg), progress=cfg.progress)
    if extra is None:
        return None
    state["model"] = model.state_dict()
    state["meta"].update(extra)
    save_checkpoint(weights, state)
    return extra


def load_detector(weights: str | os.PathLike, device: str = "cpu", ckpt: dict[str, Any] | None = None
                  ) -> tuple[Detector, dict[str, Any]]:
    """A trained detector (eval mode) and its meta, from a run directory or a .pt file."""
    model, meta = load_run_model(weights, "detect", "dcv detect train", device, ckpt)
    if hasattr(model, "fuse"):
        model.fuse()  # YOLO: batch norms folded into the convolutions (same outputs, fewer operations)
    model.to(memory_format=torch.channels_last)  # 2-4x faster convolutions on CPU, as in training
    return model, meta  # type: ignore[return-value]


def meta_proposer(meta: dict[str, Any]):
    """The external proposer a trained detector was trained with (None: it finds regions itself)."""
    p = meta["proposals"]
    if p["method"] not in EXTERNAL_PROPOSALS:
        return None
    cfg = DetectConfig(ss_mode=p["ss_mode"], max_proposals=p["max_proposals"], window_sizes=p["window_sizes"],
                       window_ratios=p["window_ratios"], window_stride=p["window_stride"])
    return build_proposer(p["method"], cfg.ss_mode, cfg.max_proposals, cfg.windows())


@torch.inference_mode()
def detect_images(model: Detector, meta: dict[str, Any], images: Tensor, proposals: Sequence[Tensor] | None,
                  post: PostProcess | None = None, progress: bool = False) -> tuple[list[Detections], list[float]]:
    """Detections for uint8 images (N, C, H, W) one image at a time, with the network seconds of each
    (forward + post-processing; external proposals are timed apart, an RPN's are part of the network)."""
    dev = next(model.parameters()).device
    post = post or PostProcess(**meta["post"])
    prep = Normaliser.from_meta(meta)
    out, seconds = [], []
    it = range(len(images))
    if progress:
        from dcvkit.progress import track

        it = track(it, description=f"{meta['model']}: detecting")
    for i in it:
        t0 = time.perf_counter()
        x = prep(images[i:i + 1].to(dev)).contiguous(memory_format=torch.channels_last)
        d = model.detect(x, [proposals[i].to(dev)] if proposals is not None else None, post)[0].to("cpu")
        seconds.append(time.perf_counter() - t0)
        out.append(d)
    return out, seconds


def to_original(det: Detections, p: Placement) -> Detections:
    """Detections in letterbox pixels -> the original image's pixels (boxes left in the padding dropped)."""
    return det.shift(-p.px, -p.py).scale(1 / p.sx, 1 / p.sy).clip((p.height, p.width))


def evaluation_data(weights: str | os.PathLike, ckpt: dict[str, Any], meta: dict[str, Any], data: Any, split: str,
                    in_chans: int) -> DetectionTensors | DetectionFiles:
    """The images a trained detector is evaluated on: ``data`` as given (loaded data, annotations in any
    format, letterboxed to the training size), or the run's own ``split``."""
    cfg = from_dict(DetectConfig, ckpt.get("config", {}), where=str(weights))
    if isinstance(data, (str, os.PathLike)) and str(data).lower() not in SCENES:
        from dcvkit.data.detection import decoded_mb, detection_files, hold, read_annotations, yaml_names_split

        p = Path(data)  # annotations given: evaluate on all their images (a YAML: its `split` entry, else val)
        entry = "val" if p.suffix.lower() in (".yaml", ".yml") and not yaml_names_split(p, split) else split
        files = detection_files(read_annotations(p, entry), tuple(meta["img_size"]), channels=in_chans)
        return hold(files, decoded_mb(files) > cfg.memory_mb)  # type: ignore[return-value]
    if data is None or isinstance(data, (str, os.PathLike)):
        data = getattr(load_splits(cfg), split)
        if data is None:
            raise DataError(f"{cfg.data}: has no '{split}' split (give --data with annotations to evaluate on)")
    if data.img_size != tuple(meta["img_size"]):
        raise DataError(f"the data's images are {data.img_size}, the model was trained on {tuple(meta['img_size'])}; "
                        "give the annotations' path (letterboxed to the training size), or use dcv detect predict")
    return data


def evaluate(weights: str | os.PathLike, *, data: Any = None, split: str = "test", device: str = "auto",
             out_dir: str | os.PathLike | None = None, progress: bool = False, backend: str = "faster_coco_eval",
             workers: int = 2) -> dict[str, Any]:
    """COCO mAP@[.5:.95], mAP@0.5, per-class AP, PR curves, and proposal / network seconds per image of a
    trained detector on a split, in each image's original pixels (letterboxed images' detections are mapped
    back). Streamed data is read batch by batch. Writes results.json, pr_curves.png and predictions.png into
    ``out_dir``."""
    ckpt = load_checkpoint(weights, map_location="cpu")
    model, meta = load_detector(weights, device, ckpt)
    data = evaluation_data(weights, ckpt, meta, data, split, model.in_chans)
    if data.classes != meta["classes"]:
        raise DataError(f"the data's classes {data.classes} differ from the model's {meta['classes']}")
    proposer = meta_proposer(meta)
    dets, seconds, prop_seconds, n_props, shown = [], [], [], [], None
    batches = data.loader(16, shuffle=False, workers=workers)
    it = iter(batches)
    if progress:
        from dcvkit.progress import track

        it = iter(track(it, total=len(batches), description=f"{meta['model']}: detecting"))
    for images, *_ in it:
        ps = propose_all(images, proposer, progress=False) if proposer else None
        d, secs = detect_images(model, meta, images, ps.boxes if ps else None)
        if shown is None:
            shown = (images[:8], d[:8])
        base = len(dets)
        dets.extend([to_original(x, data.placement(base + j)) for j, x in enumerate(d)])
        seconds.extend(secs)
        if ps:
            prop_seconds.extend(ps.seconds_per_image for _ in secs)
            n_props.extend(len(b) for b in ps.boxes)
    r = coco_eval(data.original_boxes(), data.labels, [d.boxes for d in dets], [d.scores for d in dets],
                  [d.labels for d in dets], meta["classes"], backend)
    net = sum(seconds) / max(len(seconds), 1)
    prop_s = sum(prop_seconds) / len(prop_seconds) if prop_seconds else 0.0
    r.update(split=split, model=meta["model"], proposals=meta["proposals"]["method"],
             proposals_per_image=round(sum(n_props) / len(n_props), 1) if n_props else None,
             proposal_s_per_image=prop_s, network_s_per_image=net, total_s_per_image=prop_s + net,
             device=str(next(model.parameters()).device), threads=torch.get_num_threads(),
             parameters=sum(p.numel() for p in model.parameters()))
    flag_notes(r, [], degenerate=degenerate_note(sum(len(d) for d in dets), len(dets), PostProcess(**meta["post"])))
    if out_dir is not None and shown is not None:
        from dcvkit.viz.detect import plot_detection_grid, plot_pr_curves

        out_dir = Path(out_dir)
        write_json(out_dir / "results.json", r)
        plot_pr_curves(r, out_dir / "pr_curves.png", title=f"{meta['model']}: precision-recall at IoU 0.5")
        plot_detection_grid(shown[0], shown[1], meta["classes"], out_dir / "predictions.png",
                            gt=list(zip(data.boxes[:8], data.labels[:8])))
    return r


@dataclass
class DetectPrediction:
    path: str
    png: Path
    detections: list[dict[str, Any]]


def predict(weights: str | os.PathLike, images: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
            device: str = "auto", score_thresh: float | None = None, resize: str = "letterbox",
            img_size: int | None = None, show_score: float | None = None, all_classes: bool = False
            ) -> list[DetectPrediction]:
    """Detect objects in image files of any size: each is letterboxed (scaled to fit a square of the training
    size, or of ``img_size``, with its aspect ratio kept, the rest padded grey; ``resize="stretch"``: resized
    to it), detected, and the boxes mapped back to the original pixels. ``img_size`` lets a detector that
    is not tied to one input size (all but ``yolo_v1``) see a large image at the scale it was trained on.
    Writes ``<stem>_detections.png`` (labelled boxes with scores on the original image: those scoring at least
    ``show_score`` (default :data:`~dcvkit.viz.detect.DISPLAY_SCORE`, or ``score_thresh`` when that is higher),
    one class per object unless ``all_classes``, the best on top) and one ``predictions.json`` (COCO results,
    every detection above ``score_thresh``: image file, category, bbox [x, y, w, h], score)."""
    from dcvkit.data.folders import decode
    from dcvkit.data.letterbox import letterbox_tensor
    from dcvkit.viz.detect import DISPLAY_SCORE, draw_detections

    if not images:
        raise ConfigError("give at least one image file")
    if resize not in ("letterbox", "stretch"):
        raise ConfigError(f"--resize '{resize}': choose letterbox or stretch")
    model, meta = load_detector(weights, device)
    post = PostProcess(**{**meta["post"], **({"score_thresh": score_thresh} if score_thresh is not None else {})})
    if show_score is None:  # a --score-thresh above the display default is what the user asked to see
        show_score = max(DISPLAY_SCORE, score_thresh) if score_thresh is not None else DISPLAY_SCORE
    proposer = meta_proposer(meta)
    h, w = meta["img_size"]
    if img_size is not None:
        if model.fixed_size and img_size != max(h, w):
            raise ConfigError(f"--img-size {img_size}: {meta['model']} only takes {h}x{w} images (its dense "
                              "layers are sized for them)")
        h = w = -(-int(img_size) // 32) * 32  # a multiple of every detector's stride
    out_dir = Path(out_dir)
    results, coco = [], []
    for p in map(Path, images):
        if not p.is_file():
            raise DataError(f"{p}: no such image file")
        original = torch.from_numpy(decode(p, model.in_chans, None))
        oh, ow = original.shape[-2:]
        if resize == "letterbox":
            x, placement = letterbox_tensor(original, (h, w))
            x = x[None]
        else:
            x = torch.from_numpy(decode(p, model.in_chans, (h, w)))[None]
        det = detect_images(model, meta, x, [proposer(x[0])] if proposer else None, post)[0][0]
        if resize == "letterbox":
            det = to_original(det, placement)
        else:
            det = det.scale(ow / w, oh / h)
        png = out_dir / f"{p.stem}_detections.png"
        draw_detections(original, det, meta["classes"], png, min_score=show_score, all_classes=all_classes)
        rows = [{"file": str(p), "category_id": int(c) + 1, "category": meta["classes"][int(c)],
                 "bbox": [round(b[0], 2), round(b[1], 2), round(b[2] - b[0], 2), round(b[3] - b[1], 2)],
                 "score": round(float(s), 4)} for b, s, c in zip(det.boxes.tolist(), det.scores, det.labels)]
        coco.extend(rows)
        results.append(DetectPrediction(str(p), png, rows))
    write_json(out_dir / "predictions.json", coco)
    return results


__all__ = ["DetectConfig", "DetectionTask", "train", "evaluate", "predict", "load_detector", "load_splits",
           "detect_images", "to_original", "evaluation_data", "second_stage", "with_proposals", "meta_proposer",
           "resolve_defaults", "detector_class"]
