"""Scene-graph prediction: the objects of an image and the relations between them, scored by Recall@K.

Python API (the CLI calls exactly these)::

    from dcvkit.tasks.scenegraph import SceneGraphConfig, train, evaluate, predict
    result = train(SceneGraphConfig(model="visual"))                  # graph scenes, 11 predicates
    evaluate(result.run_dir, detector="runs/detect/yolo")             # PredCls, SGCls, SGDet: R@K, mR@K, ...
    predict(result.run_dir, ["room.png"], out_dir="graphs/", detector="runs/detect/yolo")

Batches are ``(uint8 images, [boxes], [labels], [relations])`` (:mod:`dcvkit.data.scenegraph`); a model gives
its loss through ``model.loss(images, boxes, labels, relations)`` and its graphs through
``model.predict(images, boxes, labels=None, scores=None)`` (:mod:`dcvkit.models.scenegraph.base`). Before
training, every model is given the training set's predicate counts per class pair (the frequency bias).
Horizontal flips mirror the boxes and swap the predicates that name left and right; vertical flips (on by
default for the generated scenes only) swap those that name above and below.

The three protocols (Xu et al. 2017): **PredCls** (true boxes and classes given: the predicates alone),
**SGCls** (true boxes given: classes from the model's RoI classifier), **SGDet** (boxes and classes from a
``dcv detect`` run: everything predicted).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from dcvkit.data import DataSplits
from dcvkit.data.scenegraph import SceneGraphTensors, check_vocabulary
from dcvkit.engine import seed_everything
from dcvkit.errors import ConfigError, DataError
from dcvkit.io import load_checkpoint, write_json
from dcvkit.metrics.scenegraph import GraphPrediction, GraphTruth, graph_recall
from dcvkit.models import create_model
from dcvkit.models.normalise import Normaliser
from dcvkit.models.trained import load_run_model
from dcvkit.tasks import get_task
from dcvkit.tasks.common import (ModelLossTask, TrainResult, family_class, fill_defaults, fit_run, flag_notes,
                                 model_kwargs, start_config)
from dcvkit.tasks.configs import SceneGraphConfig

PROTOCOLS = ("predcls", "sgcls", "sgdet")
KS = (20, 50, 100)
#: SGDet: a detector's boxes scoring at least this, at most this many per image, are the graph's objects
DETECTION_SCORE, DETECTION_TOP = 0.1, 20


def load_splits(cfg: SceneGraphConfig) -> DataSplits:
    from dcvkit.data.splits import scenegraph_splits

    return scenegraph_splits(cfg.data, test_data=cfg.test_data, val_split=cfg.val_split, seed=cfg.seed,
                             img_size=cfg.img_size, limit=cfg.limit, scenes=cfg.scenes, test_scenes=cfg.test_scenes,
                             scene_seed=cfg.scene_seed, data_dir=cfg.data_dir, download=cfg.download,
                             progress=cfg.progress)


#: the words a mirror swaps in a predicate's name: left-right flips, up-down flips
MIRRORED = {"horizontal": ("left", "right"), "vertical": ("above", "below")}


def flip_index(predicates: Sequence[str], axis: str = "horizontal") -> Tensor:
    """The predicate each predicate becomes in a mirrored image: for a horizontal flip the names with "left"
    and "right" swapped, for a vertical one "above" and "below", when the swapped name is a predicate too
    ("left of" <-> "right of"), else itself."""
    a, b = MIRRORED[axis]

    def swapped(p: str) -> str:
        return p.replace(a, "\0").replace(b, a).replace("\0", b)

    return torch.tensor([list(predicates).index(swapped(p)) if swapped(p) in predicates else i
                         for i, p in enumerate(predicates)])


def predicate_counts(data: SceneGraphTensors) -> Tensor:
    """(C, C, R + 1) ordered pairs of true objects per (subject class, object class, predicate); column 0: the
    pairs without a relation (what the frequency bias is made of)."""
    c, r = len(data.classes), len(data.predicates)
    counts = torch.zeros(c, c, r + 1, dtype=torch.float64)
    for lab, rel in zip(data.labels, data.relations):
        pairs = torch.bincount((lab[:, None] * c + lab[None, :]).flatten(), minlength=c * c).view(c, c).double()
        pairs -= torch.bincount(lab * (c + 1), minlength=c * c).view(c, c).double()  # no pair with itself
        counts[..., 0] += pairs
        if len(rel):
            s, o = lab[rel[:, 0]], lab[rel[:, 1]]
            counts.index_put_((s, o, rel[:, 2] + 1), torch.ones(len(rel), dtype=torch.float64), accumulate=True)
            counts.index_put_((s, o, torch.zeros_like(s)), -torch.ones(len(rel), dtype=torch.float64), accumulate=True)
    return counts.clamp_min(0)


def seen_triples(counts: Tensor) -> set[tuple[int, int, int]]:
    """The (subject class, object class, predicate) triples that occur in training (zsR@K's complement)."""
    s, o, p = (counts[..., 1:] > 0).nonzero(as_tuple=True)
    return set(zip(s.tolist(), o.tolist(), p.tolist()))


class SceneGraphTask(ModelLossTask):
    """Trains a scene-graph model through ``model.loss``; PredCls R@50 / mR@50 on validation images each epoch."""

    def __init__(self, model: Any, cfg: SceneGraphConfig, classes: list[str], predicates: list[str],
                 normaliser: Normaliser, model_kwargs: dict[str, Any]):
        self.model, self.cfg, self.classes, self.predicates = model, cfg, classes, predicates
        self.normaliser, self.augmenter = normaliser, None
        self.model_kwargs = dict(model_kwargs)
        self.flip, self.vflip = flip_index(predicates), flip_index(predicates, "vertical")
        self.flips = torch.Generator().manual_seed(cfg.seed)
        self._sums: list[Tensor] = []
        self._truths: list[GraphTruth] = []
        self._preds: list[GraphPrediction] = []
        self._obj = [0, 0]

    def training_step(self, batch) -> tuple[Tensor, dict[str, Tensor]]:
        images, boxes, labels, relations = batch
        if self.cfg.hflip:
            flip, images, boxes = self.random_flip(images, boxes)
            relations = _mirror(relations, flip, self.flip)
        if self.cfg.vflip:
            flip, images, boxes = self.random_flip(images, boxes, vertical=True)
            relations = _mirror(relations, flip, self.vflip)
        out = self.model.loss(self.preprocess(images), boxes, labels, relations)
        return out.pop("loss"), out

    def validation_step(self, batch) -> None:
        images, boxes, labels, relations = batch
        x = self.preprocess(images)
        out = self.model.loss(x, boxes, labels, relations)
        self.add_val_loss(out["loss"], len(images))
        if len(self._preds) < self.cfg.val_images:
            for g, b, lab, r in zip(self.model.predict(x, boxes, labels), boxes, labels, relations):
                self._truths.append(GraphTruth(b.numpy(), lab.numpy(), r.numpy()))
                self._preds.append(_prediction(g))
            for g, lab in zip(self.model.predict(x, boxes), labels):  # SGCls: the classifier's classes
                self._obj[0] += int((g.labels.cpu() == lab).sum())
                self._obj[1] += len(lab)

    def validation_epoch_end(self) -> dict[str, float]:
        out = {"val_loss": self.val_loss()}
        if self._preds:
            r = graph_recall(self._truths, self._preds, len(self.predicates), ks=(50,))
            out.update(val_obj_acc=self._obj[0] / max(1, self._obj[1]), val_r50=r["R@50"], val_mr50=r["mR@50"])
            self._truths.clear()
            self._preds.clear()
            self._obj = [0, 0]
        return out

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"task": "scenegraph", "model": self.cfg.model, "model_kwargs": self.model_kwargs,
                "classes": self.classes, "predicates": self.predicates, **self.normalisation_meta(),
                "img_size": list(self.model.img_size)}


def _mirror(relations: list[Tensor], flipped: Tensor, index: Tensor) -> list[Tensor]:
    """The relations of the ``flipped`` images with their predicates mapped through ``index`` (flip_index)."""
    return [torch.column_stack([r[:, :2], index[r[:, 2]]]) if f and len(r) else r
            for r, f in zip(relations, flipped.tolist())]


def _prediction(g) -> GraphPrediction:
    return GraphPrediction(g.boxes.cpu().numpy(), g.labels.cpu().numpy(), g.scores.cpu().numpy(),
                           g.pairs.cpu().numpy(), g.predicate_scores.cpu().numpy())


def train(cfg: SceneGraphConfig, run_dir: str | os.PathLike | None = None, splits: DataSplits | None = None
          ) -> TrainResult:
    """Train a scene-graph model; writes a run directory (config.yaml, best.pt/last.pt, metrics.csv, curves.png
    and, with a test split, results.json: R@K, ngR@K, mR@K, zsR@K per protocol, per-predicate recall) and
    returns it."""
    from dcvkit.models.scenegraph.base import DEFAULTS

    cfg, ckpt, run_dir = start_config(cfg, run_dir)
    spec = get_task("scenegraph")
    model_kwargs(spec, cfg)
    cfg = fill_defaults(cfg, family_class(spec, cfg.model), DEFAULTS)
    if cfg.vflip is None:  # the generated scenes have no up or down: their "above" is only smaller y
        cfg = dataclasses.replace(cfg, vflip=cfg.data == "scenes")
    detector_weights(cfg.detector)  # refused now, not after the training
    seed_everything(cfg.seed, cfg.deterministic)
    splits = splits if splits is not None else load_splits(cfg)
    if splits.train.triples == 0:
        raise DataError(f"{cfg.data}: the training images have no relationships to learn from")
    train_data = splits.train
    kw = model_kwargs(spec, cfg, num_classes=len(train_data.classes), num_predicates=len(train_data.predicates),
                      in_chans=splits.channels, img_size=list(splits.img_size))
    model = create_model(cfg.model, **kw)
    model.set_prior(predicate_counts(train_data))  # a resumed run's weights (the prior included) replace it
    mean, std = (ckpt["meta"]["mean"], ckpt["meta"]["std"]) if ckpt else train_data.mean_std()
    task = SceneGraphTask(model, cfg, list(train_data.classes), list(train_data.predicates), Normaliser(mean, std), kw)
    result = fit_run(task, cfg, splits, run_dir, "scenegraph", evaluate, ckpt, val_batch=cfg.batch_size, test=False)
    best = result.run_dir / "best.pt"
    if cfg.test and splits.test is not None and best.exists():
        result.test = evaluate(best, data=splits.test, device=cfg.device, out_dir=result.run_dir,
                               detector=cfg.detector)
    return result


def load_graph_model(weights: str | os.PathLike, device: str = "cpu", ckpt: dict[str, Any] | None = None):
    """A trained scene-graph model (eval mode) and its meta."""
    model, meta = load_run_model(weights, "scenegraph", "dcv scenegraph train", device, ckpt)
    for key in ("classes", "predicates"):
        if not isinstance(meta.get(key), list) or not meta[key]:
            from dcvkit.errors import CheckpointError
            raise CheckpointError(f"{weights}: meta has no '{key}' list; the checkpoint is damaged or not dcvkit's")
    return model, meta


def detector_weights(spec: str | os.PathLike | None) -> Path | None:
    """The best.pt of the detect run ``spec`` (None: none given); a path that is not one is a one-line error."""
    if spec is None:
        return None
    path = Path(spec)
    weights = path / "best.pt" if path.is_dir() else path
    if not weights.is_file():
        raise ConfigError(f"--detector {spec}: not a dcv detect run directory (no best.pt there)")
    return weights


class GraphDetector:
    """SGDet's objects: a detect run's boxes (score >= :data:`DETECTION_SCORE`, the best
    :data:`DETECTION_TOP`), classes and scores, on the scene-graph model's images."""

    def __init__(self, spec: str | os.PathLike, meta: dict[str, Any], device: str):
        from dcvkit.tasks.detect import load_detector

        self.weights = detector_weights(spec)
        self.model, self.meta = load_detector(self.weights, device)
        if list(self.meta["classes"]) != list(meta["classes"]):
            raise ConfigError(f"--detector {spec}: its classes {self.meta['classes'][:6]} differ from the scene-graph "
                              f"model's {meta['classes'][:6]}; train the detector on the same classes")
        if list(self.meta["img_size"]) != list(meta["img_size"]):
            raise ConfigError(f"--detector {spec}: its images are {self.meta['img_size']}, the model's "
                              f"{meta['img_size']}; train both at one size")

    def __call__(self, images: Tensor) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        from dcvkit.models.detect.postprocess import PostProcess
        from dcvkit.tasks.detect import detect_images

        post = PostProcess(**{**self.meta["post"], "score_thresh": DETECTION_SCORE, "top_k": DETECTION_TOP})
        dets, _ = detect_images(self.model, self.meta, images, None, post)
        return [d.boxes for d in dets], [d.labels for d in dets], [d.scores for d in dets]


def graphs(model, meta: dict[str, Any], images: Tensor, protocol: str, boxes: Sequence[Tensor] | None = None,
           labels: Sequence[Tensor] | None = None, detector: GraphDetector | None = None
           ) -> tuple[list[Any], list[float]]:
    """Each image's graph under ``protocol`` (one image at a time, as a deployed model sees them) and the
    seconds of each (SGDet: the detector's included)."""
    prep = Normaliser.from_meta(meta)
    dev = next(model.parameters()).device
    out, secs = [], []
    for i in range(len(images)):
        t0 = time.perf_counter()
        x = images[i:i + 1]
        if protocol == "sgdet":
            assert detector is not None
            b, lab, s = detector(x)
            g = model.predict(prep(x.to(dev)), b, lab, s)[0]
        else:
            g = model.predict(prep(x.to(dev)), [boxes[i]], [labels[i]] if protocol == "predcls" else None)[0]
        secs.append(time.perf_counter() - t0)
        out.append(g)
    return out, secs


def score(truths: list[GraphTruth], preds: list[GraphPrediction], predicates: list[str],
          seen: set[tuple[int, int, int]], counts: np.ndarray) -> dict[str, Any]:
    """One protocol's numbers: R@K, ngR@K, mR@K, ngmR@K, zsR@K and the per-predicate table."""
    from dcvkit.data.graph_scenes import KINDS

    r = graph_recall(truths, preds, len(predicates), KS, seen=seen)
    table = [{"predicate": p, "kind": KINDS.get(p), "triples": int(counts[q]),
              **{f"R@{k}": r[f"per_predicate@{k}"][q] for k in KS}} for q, p in enumerate(predicates)]
    return {**{k: v for k, v in r.items() if not k.startswith("per_predicate")}, "per_predicate": table}


def evaluate(weights: str | os.PathLike, *, data: Any = None, split: str = "test", device: str = "auto",
             out_dir: str | os.PathLike | None = None, progress: bool = False, detector: str | None = None,
             protocols: Sequence[str] = PROTOCOLS) -> dict[str, Any]:
    """R@20/50/100 (graph constraint), ngR@K (none), mR@K, zsR@K (triples unseen in training) and each
    predicate's recall, per protocol (PredCls, SGCls; SGDet with a ``detector`` run), with ms per image, on a
    split (the run's own, or ``data``: loaded data or a VG-like .json). Writes results.json, graphs.png and
    per_predicate.png into ``out_dir``."""
    from dcvkit.config import from_dict
    from dcvkit.data import vg
    from dcvkit.data.scenegraph import from_annotations

    ckpt = load_checkpoint(weights, map_location="cpu")
    model, meta = load_graph_model(weights, device, ckpt)
    if isinstance(data, (str, os.PathLike)):
        data = from_annotations(vg.read(data), tuple(meta["img_size"]))
    elif data is None:
        cfg = from_dict(SceneGraphConfig, ckpt.get("config", {}), where=str(weights))
        data = getattr(load_splits(cfg), split)
        if data is None:
            raise DataError(f"{cfg.data}: has no '{split}' split (give --data with a scene-graph file)")
    assert isinstance(data, SceneGraphTensors)
    check_vocabulary(data, meta["classes"], meta["predicates"], "the evaluation data")
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ConfigError(f"unknown protocol {unknown[0]}; choose from {', '.join(PROTOCOLS)}")
    found = GraphDetector(detector, meta, device) if detector and "sgdet" in protocols else None
    protocols = [p for p in protocols if p != "sgdet" or found is not None]
    seen = seen_triples(model.counts.cpu())
    counts = np.bincount(np.concatenate([r[:, 2].numpy() for r in data.relations] or [np.zeros(0, np.int64)]),
                         minlength=len(meta["predicates"]))
    truths = [GraphTruth(b.numpy(), lab.numpy(), r.numpy()) for b, lab, r in zip(data.boxes, data.labels,
                                                                                 data.relations)]
    results: dict[str, Any] = {}
    shown: dict[str, list[Any]] = {}
    for protocol in protocols:
        preds, secs = [], []
        for start in range(0, len(data), 64):
            g, s = graphs(model, meta, data.images[start:start + 64], protocol, data.boxes[start:start + 64],
                          data.labels[start:start + 64], found)
            preds += [_prediction(x) for x in g]
            secs += s
        r = score(truths, preds, list(meta["predicates"]), seen, counts)
        if protocol == "sgcls":  # the classifier's classes of the true boxes
            r["obj_acc"] = float(np.mean(np.concatenate([p.labels == t.labels for p, t in zip(preds, truths)])))
        elif protocol == "sgdet":
            r["detections_per_image"] = float(np.mean([len(p.labels) for p in preds]))
        r["ms_per_image"] = 1000 * float(np.mean(secs))
        results[protocol] = r
        shown[protocol] = preds[:4]
    out: dict[str, Any] = {
        "split": split, "model": meta["model"], "images": len(data), "objects": data.objects,
        "triples": data.triples, "zero_shot_triples": sum(
            (int(t.labels[a]), int(t.labels[b]), int(q)) not in seen for t in truths for a, b, q in t.triples.tolist()),
        "predicates": list(meta["predicates"]), "protocols": results,
        "detector": str(found.weights) if found else None, "device": str(next(model.parameters()).device),
        "threads": torch.get_num_threads(), "parameters": sum(p.numel() for p in model.parameters())}
    flag_notes(out, degenerate_notes(results, data.triples))
    if out_dir is not None:
        from dcvkit.viz.scenegraph import plot_graph_grid, plot_per_predicate

        out_dir = Path(out_dir)
        write_json(out_dir / "results.json", out)
        first = "sgdet" if "sgdet" in shown else protocols[0]
        plot_graph_grid(data.images[:4], shown[first], meta["classes"], meta["predicates"], out_dir / "graphs.png",
                        title=first)
        plot_per_predicate(out, out_dir / "per_predicate.png")
    return out


def degenerate_notes(results: dict[str, Any], triples: int) -> list[str]:
    """What makes these numbers untrustworthy, in words: too few triples, recall at zero."""
    notes = []
    if triples < 200:
        notes.append(f"only {triples} ground-truth triples: the recalls are uncertain at this size")
    for name, r in results.items():
        if r["R@100"] == 0:
            notes.append(f"{name}: no ground-truth triple recalled at K=100 (check the classes, boxes and detector)")
    return notes


def predict(weights: str | os.PathLike, images: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
            detector: str | None = None, device: str = "auto", top: int = 10, min_score: float = 0.05
            ) -> list[dict[str, Any]]:
    """Scene graphs of image files of any size (letterboxed to the training size, boxes mapped back), objects
    from the ``detector`` run (SGDet): ``<stem>_graph.png`` (the boxes on the image, the graph beside it) per
    image and ``triples.json`` (file, subject, predicate, object with classes, boxes in the original pixels
    and scores; the ``top`` best triples per image scoring at least ``min_score``)."""
    from PIL import Image

    from dcvkit.data.letterbox import read_letterboxed
    from dcvkit.metrics.scenegraph import ranked_triples
    from dcvkit.viz.scenegraph import draw_graph

    if not images:
        raise ConfigError("give at least one image file")
    if detector is None:
        raise ConfigError("dcv scenegraph predict needs --detector RUN: a dcv detect run finds the objects whose "
                          "relations are predicted")
    model, meta = load_graph_model(weights, device)
    found = GraphDetector(detector, meta, device)
    out_dir = Path(out_dir)
    rows: list[dict[str, Any]] = []
    for path in map(Path, images):
        if not path.is_file():
            raise DataError(f"{path}: no such image file")
        arr, p = read_letterboxed(path, 3, tuple(meta["img_size"]))
        x = torch.from_numpy(np.ascontiguousarray(arr))[None]
        (g,), _ = graphs(model, meta, x, "sgdet", detector=found)
        pred = _prediction(g)
        boxes = p.to_original(torch.from_numpy(pred.boxes)).numpy() if len(pred.boxes) else pred.boxes
        top_t, top_s = ranked_triples(pred, top)
        keep = top_s >= min_score
        triples = [(int(s), int(o), int(q), float(sc)) for (s, o, q), sc in zip(top_t[keep], top_s[keep])]
        with Image.open(path) as im:
            original = np.asarray(im.convert("RGB"))
        draw_graph(original, boxes, [meta["classes"][int(c)] for c in pred.labels],
                   [(s, o, meta["predicates"][q], sc) for s, o, q, sc in triples], out_dir / f"{path.stem}_graph.png")
        for s, o, q, sc in triples:
            rows.append({"file": str(path), "predicate": meta["predicates"][q], "score": round(sc, 4),
                         **{k: {"id": j, "class": meta["classes"][int(pred.labels[j])],
                                "box": [round(float(v), 2) for v in boxes[j]], "score": round(float(pred.scores[j]), 4)}
                            for k, j in (("subject", s), ("object", o))}})
    write_json(out_dir / "triples.json", rows)
    return rows


__all__ = ["SceneGraphConfig", "SceneGraphTask", "train", "evaluate", "predict", "load_splits", "load_graph_model",
           "predicate_counts", "seen_triples", "flip_index", "GraphDetector", "PROTOCOLS"]
