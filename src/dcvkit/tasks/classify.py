"""Image classification: the task glue between data, models, the engine, metrics and plots.

Python API (the CLI calls exactly these)::

    from dcvkit.tasks.classify import ClassifyConfig, train, evaluate, predict
    result = train(ClassifyConfig(data="fashion-mnist", model="cnn", epochs=12))
    evaluate(result.run_dir)                       # test-set metrics of best.pt
    predict(result.run_dir, ["shoe.png"], topk=3)  # top-k classes with probabilities
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from dcvkit.augment import AugmentConfig, Augmenter, parse_augment
from dcvkit.config import TrainConfig, from_dict
from dcvkit.data import DataSplits
from dcvkit.data.folders import decode, probe
from dcvkit.engine import build_optimizer, epoch_seed, param_groups, seed_everything
from dcvkit.errors import ConfigError, DataError
from dcvkit.io import load_checkpoint, write_json
from dcvkit.losses.classification import classification_loss
from dcvkit.metrics import degenerate
from dcvkit.metrics.classification import (accuracy, accuracy_interval, classification_report, confusion_matrix,
                                           small_split_note, topk_accuracy)
from dcvkit.models import create_model
from dcvkit.models.normalise import Normaliser
from dcvkit.models.trained import load_run_model
from dcvkit.tasks import get_task
from dcvkit.tasks.common import ImageTask, TrainResult, fit_run, flag_notes, model_kwargs, start_config
from dcvkit.tasks.configs import ClassifyConfig


# --- the task: what one training/validation step computes ------------------------------------------


class ClassificationTask(ImageTask):
    """Cross-entropy classification of uint8 image batches, augmented and normalised on the device.

    ``normaliser`` is the run's (the data's mean/std, or its augmentation's standardization); ``model_kwargs``
    what rebuilds the model from the checkpoint."""

    def __init__(self, model: nn.Module, cfg: ClassifyConfig, classes: list[str], normaliser: Normaliser,
                 model_kwargs: dict[str, Any], augmenter: Augmenter | None = None):
        self.model, self.cfg, self.classes = model, cfg, classes
        self.normaliser, self.model_kwargs = normaliser, dict(model_kwargs)
        self.augmenter = augmenter
        self._val: list[Tensor] = []
        self._predicted: Tensor | None = None  # validation: images predicted as each class
        self._spread = degenerate.OutputSpread()  # validation: how much each class probability varies
        self._notes: list[str] = []

    @property
    def find_unused_parameters(self) -> bool:
        """For DistributedDataParallel: a frozen backbone takes no part in the loss."""
        return self.cfg.freeze_backbone

    def configure_optimizers(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        if not self.cfg.pretrained or self.cfg.backbone_lr == 1.0:
            return build_optimizer(param_groups(self.model, cfg.weight_decay), cfg)
        head = list(self.model.get_classifier().parameters())
        backbone = [p for p in self.model.parameters() if all(p is not h for h in head)]
        # The head's groups first: the engine logs the first group's lr, which is then --lr's schedule.
        groups = (param_groups(head, cfg.weight_decay, cfg.lr)
                  + param_groups(backbone, cfg.weight_decay, cfg.lr * self.cfg.backbone_lr))
        return build_optimizer(groups, cfg)

    def frozen(self, epoch: int) -> bool:
        """Whether the backbone is frozen in (0-based) ``epoch``."""
        return self.cfg.freeze_backbone and (self.cfg.unfreeze_at is None or epoch + 1 < self.cfg.unfreeze_at)

    def on_train_epoch_start(self, epoch: int) -> None:
        """Reseed the augmentation (a resumed run draws the same transforms); freeze (or unfreeze) the
        backbone, a frozen backbone also keeping its batch-norm statistics."""
        if self.augmenter is not None:
            self.augmenter.reseed(epoch_seed(self.cfg.seed, epoch))
        if not self.cfg.freeze_backbone:
            return
        frozen = self.frozen(epoch)
        head = self.model.get_classifier()
        for p in self.model.parameters():
            p.requires_grad_(not frozen)
        for p in head.parameters():
            p.requires_grad_(True)
        if frozen:
            self.model.eval()
            head.train()

    def training_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        images, target = batch
        if self.augmenter is not None and self.augmenter.cfg.random:
            images = self.augmenter.augment(images).images
        logits = self.model(self.preprocess(images))
        loss = classification_loss(self.cfg.loss, logits, target, self.cfg.label_smoothing)
        for aux in getattr(self.model, "aux_outputs", None) or []:  # GoogLeNet's auxiliary classifiers
            loss = loss + 0.3 * classification_loss(self.cfg.loss, aux, target, self.cfg.label_smoothing)
        return loss, {"acc": (logits.argmax(1) == target).float().mean()}

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> None:
        images, target = batch
        logits = self.model(self.preprocess(images)).float()
        loss = nn.functional.cross_entropy(logits, target, reduction="sum")
        self._val.append(torch.stack([loss, (logits.argmax(1) == target).sum().float(),
                                      torch.tensor(float(len(target)), device=logits.device)]))
        counts = torch.bincount(logits.argmax(1), minlength=logits.shape[1])
        self._predicted = counts if self._predicted is None else self._predicted + counts
        self._spread.update(logits.softmax(1))

    def validation_epoch_end(self) -> dict[str, float]:
        loss, correct, n = torch.stack(self._val).sum(0).tolist()
        self._val.clear()
        assert self._predicted is not None
        self._notes = [degenerate_note(self._predicted.cpu(), self._spread.std(), self.classes)]
        self._predicted, self._spread = None, degenerate.OutputSpread()
        return {"val_loss": loss / n, "val_acc": correct / n}

    def validation_notes(self) -> list[str]:
        return self._notes

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"task": "classify", "model": self.cfg.model, "model_kwargs": self.model_kwargs,
                "classes": self.classes, **self.normalisation_meta()}


def build_augmenter(cfg: ClassifyConfig) -> tuple[ClassifyConfig, Augmenter | None]:
    """The run's :class:`Augmenter` from ``--augment`` and ``--hflip``; the config gets the resolved options
    inline (so config.yaml repeats the run without the YAML file) and the augmentation's validation_split."""
    aug = parse_augment(cfg.augment)
    if cfg.hflip:
        aug = dataclasses.replace(aug or AugmentConfig(), horizontal_flip=True)
    if aug is None:
        return cfg, None
    if aug.validation_split is not None and aug.validation_split != cfg.val_split:
        if cfg.val_split != ClassifyConfig().val_split:
            raise ConfigError(f"--val-split {cfg.val_split} and augment validation_split {aug.validation_split} "
                              "disagree; give one of them")
        cfg = dataclasses.replace(cfg, val_split=aug.validation_split)
    return dataclasses.replace(cfg, augment=aug.inline() or None), Augmenter(aug, cfg.seed)


def fit_augmenter(aug: Augmenter, splits: DataSplits, max_images: int = 20_000, seed: int = 0) -> None:
    """Check the augmentation fits the data, then ``fit()`` its featurewise statistics on training images."""
    size = tuple(splits.img_size)
    if getattr(splits.train, "frames", None) and (aug.cfg.standardizes or aug.cfg.color_jitter):
        raise ConfigError("--augment: clips (moving-fashion-mnist, lrcn) take the random geometric and brightness "
                          "ops only; drop the standardization and color_jitter options")
    if aug.output_size(size) != size:
        raise ConfigError(f"--augment: resize/random_crop turn {size[0]}x{size[1]} images into "
                          f"{'x'.join(map(str, aug.output_size(size)))}; in training resize the data with --img-size "
                          "and use random_crop with crop_padding (same size)")
    if not aug.cfg.needs_fit:
        return
    if hasattr(splits.train, "images"):
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(splits.train), generator=g)[:max_images]
        images = splits.train.images[idx]
    else:
        images = torch.cat([b for b, _ in splits.train.loader(256, shuffle=True, seed=seed)][: -(-max_images // 256)])
    aug.fit(images[:max_images])


def classifier_kwargs(cfg: ClassifyConfig, splits: DataSplits) -> dict[str, Any]:
    """The builder's kwargs: the data's classes, channels and size, and the model options given."""
    return model_kwargs(get_task("classify"), cfg, num_classes=splits.num_classes, in_chans=splits.channels,
                        img_size=list(splits.img_size))


def build_model(cfg: ClassifyConfig, splits: DataSplits
                ) -> tuple[ClassifyConfig, nn.Module, dict[str, Any], tuple[list[float], list[float]] | None]:
    """The model for ``cfg`` and ``splits``, with ``--pretrained`` weights loaded (its new head fresh).

    Returns the config (width and stem filled in from a dcvkit checkpoint when not given), the model, its
    builder kwargs and the input normalisation the pretrained weights expect (None: use the data's own)."""
    if cfg.freeze_backbone and not cfg.pretrained:
        raise ConfigError("--freeze-backbone needs --pretrained weights (a random backbone is not worth freezing)")
    if not cfg.pretrained:
        kw = classifier_kwargs(cfg, splits)
        return cfg, create_model(cfg.model, **kw), kw, None
    from dcvkit.engine.loop import console
    from dcvkit.models.pretrained import apply_pretrained, input_stats, read_pretrained

    pre = read_pretrained(cfg.pretrained, cfg.download)
    saved = (pre.meta or {}).get("model_kwargs", {})
    cfg = dataclasses.replace(cfg, **{k: saved[k] for k in ("width", "stem") if getattr(cfg, k) is None and k in saved})
    kw = classifier_kwargs(cfg, splits)
    model = create_model(cfg.model, **kw)
    notes = apply_pretrained(model, pre, splits.classes)
    if cfg.progress:
        console.print(f"pretrained weights from {pre.source}" + (f" ({'; '.join(notes)})" if notes else ""),
                      highlight=False)
    return cfg, model, kw, input_stats(pre, splits.channels)


# --- train / evaluate / predict -----------------------------------------------------------------------


def train(cfg: ClassifyConfig, run_dir: str | os.PathLike | None = None) -> TrainResult:
    """Train a classifier; writes a run directory (config, checkpoints, metrics, plots) and returns it."""
    cfg, ckpt, run_dir = start_config(cfg, run_dir)
    seed_everything(cfg.seed, cfg.deterministic)
    cfg, augmenter = build_augmenter(cfg)
    splits = load_splits(cfg)
    check_trainable(splits)
    if ckpt is None:
        cfg = small_data_defaults(cfg, len(splits.train))
    cfg, task = build_task(cfg, splits, augmenter, ckpt)
    return fit_run(task, cfg, splits, run_dir, "classify", evaluate, ckpt, val_batch=512, test=cfg.test)


def check_trainable(splits: DataSplits) -> None:
    """A classifier needs two classes (one class: a folder of one subfolder, a dataset of one image, would
    train to a constant without a word), and a class without training images is warned about."""
    if len(splits.classes) < 2:
        raise DataError(f"{splits.name}: only one class ({', '.join(splits.classes)}); a classifier needs at least "
                        "two (one subfolder per class, or names like cat.1.jpg and dog.1.jpg)")
    counts = torch.bincount(torch.as_tensor(splits.train.labels), minlength=len(splits.classes))
    if (counts == 0).any():
        empty = [c for c, n in zip(splits.classes, counts.tolist()) if n == 0]
        warnings.warn(f"{splits.name}: no training images of class {', '.join(empty[:5])} (after the validation "
                      "split and --limit): the model cannot learn it; give more images of it, a smaller "
                      "--val-split or a larger --limit", stacklevel=2)


SMALL_DATA = 2000  # training images below which the engine defaults (batch 128, SGD lr 0.05) swing too far


def small_data_defaults(cfg: ClassifyConfig, n_train: int) -> ClassifyConfig:
    """Safer defaults for a small training set, where they were left at the config's: batch 32 (a batch of 128
    over 144 images is 2 steps an epoch, each a large jump) and SGD lr 0.01 (at 0.05 the one-cycle peak sent
    the validation loss of 160 face photos from 0.07 to 9.3). Measured on scikit-image's LFW subset (144
    training images, 2 classes, cnn_small, 10 epochs): test accuracy 0.825 with the defaults, 0.975 with
    these, in either folder layout. Options set to other values than the defaults are kept;
    ``--no-small-data`` keeps the defaults too."""
    if n_train >= SMALL_DATA or not cfg.small_data:
        return cfg
    default = {f.name: f.default for f in dataclasses.fields(type(cfg))}
    changes: dict[str, Any] = {}
    if cfg.batch_size == default["batch_size"] and cfg.batch_size > 32:
        changes["batch_size"] = 32
    if cfg.lr == default["lr"] and cfg.optimizer == default["optimizer"] == "sgd" and cfg.lr > 0.01:
        changes["lr"] = 0.01
    if changes and cfg.progress:
        from dcvkit.engine.loop import console

        console.print(f"small dataset ({n_train:,} training images): "
                      + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in changes.items())
                      + " instead of the defaults (give them to override)", highlight=False)
    return dataclasses.replace(cfg, **changes)


def build_task(cfg: ClassifyConfig, splits: DataSplits, augmenter: Augmenter | None = None,
               ckpt: dict[str, Any] | None = None) -> tuple[ClassifyConfig, ClassificationTask]:
    """The training task of ``cfg`` on ``splits``: the model (pretrained weights loaded), the augmentation
    (fitted on the training images) and the normaliser; from a checkpoint being resumed, the run's own
    architecture, normalisation and augmentation statistics. Returns the config as completed."""
    if ckpt:
        kw = classifier_kwargs(cfg, splits)
        model = create_model(cfg.model, **kw)
        mean, std = ckpt["meta"]["mean"], ckpt["meta"]["std"]
        if "augment" in ckpt["meta"]:
            augmenter = Augmenter.from_state(ckpt["meta"]["augment"], cfg.seed)
    else:
        cfg, model, kw, stats = build_model(cfg, splits)
        mean, std = stats or splits.train.mean_std()
        if augmenter is not None:
            fit_augmenter(augmenter, splits, seed=cfg.seed)
    return cfg, ClassificationTask(model, cfg, splits.classes, Normaliser(mean, std, augmenter), kw, augmenter)


def load_splits(cfg: ClassifyConfig) -> DataSplits:
    """The run's train / val / test splits (a named dataset or an image folder)."""
    return cfg.load_splits(cfg.seed)


def load_classifier(weights: str | os.PathLike, device: str = "cpu", ckpt: dict[str, Any] | None = None
                    ) -> tuple[nn.Module, dict[str, Any]]:
    """A trained classifier (in eval mode) and its meta (classes, mean, std) from a run dir or .pt file
    (``ckpt``: that file's contents when the caller has already loaded them)."""
    return load_run_model(weights, "classify", "dcv classify train", device, ckpt, channels_last=True)


@torch.inference_mode()
def predict_tensors(model: nn.Module, meta: dict[str, Any], images: Tensor, batch_size: int = 512) -> Tensor:
    """Class probabilities (N, K) for uint8 images (N, C, H, W)."""
    dev = next(model.parameters()).device
    normalise = Normaliser.from_meta(meta)
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(dev)
        x = x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x
        out.append(model(normalise(x)).float().softmax(1).cpu())
    return torch.cat(out) if out else torch.empty(0, len(meta["classes"]))


def degenerate_note(predicted: Tensor, std: Tensor, classes: Sequence[str]) -> str:
    """What is degenerate about a classifier's answers (``predicted``: images per predicted class, ``std``: each
    class probability's spread over the images), with what to change; empty when nothing is."""
    images = int(predicted.sum())
    note = degenerate.constant_output(std, images) or degenerate.one_class(predicted, classes, "image")
    return (f"{note} (check that the labels match the images, try another --lr, train longer, or use a model "
            "with normalisation layers)") if note else ""


def evaluate(weights: str | os.PathLike, *, data: Any = None, data_dir: str | None = None,
             split: str = "test", device: str = "auto", out_dir: str | os.PathLike | None = None,
             batch_size: int = 512) -> dict[str, Any]:
    """Accuracy, top-5, per-class report and confusion matrix of a checkpoint on a split.

    ``data`` is an in-memory split, a dataset name/folder, or None for the run's own dataset.
    Writes ``results.json`` and ``confusion_matrix.png`` into ``out_dir`` when given.
    """
    ckpt = load_checkpoint(weights, map_location="cpu")
    model, meta = load_classifier(weights, device, ckpt)
    source = "the images"
    if data is None or isinstance(data, (str, os.PathLike)):
        # The run's own data options (split fraction, seed, limit, sizes), so "val" is the run's val split.
        cfg = from_dict(ClassifyConfig, ckpt.get("config", {}), where=str(weights))
        overrides = {k: v for k, v in (("data", data), ("data_dir", data_dir)) if v is not None}
        cfg = from_dict(ClassifyConfig, overrides, base=cfg)
        splits = load_splits(cfg)
        data, source = getattr(splits, split), f"{cfg.data} ({split})"
        if data is None:
            raise DataError(f"{cfg.data}: has no '{split}' split")
    if not hasattr(data, "images"):  # streamed folder: decode it batch by batch
        imgs, labels = zip(*data.loader(batch_size, shuffle=False))
        images, target = torch.cat(imgs), torch.cat(labels)
    else:
        images, target = data.images, data.labels
    if tuple(images.shape[-3:]) != (model.in_chans, *model.img_size):
        raise DataError(f"{source}: images are {tuple(images.shape[-3:])} but the model {weights} expects "
                        f"{(model.in_chans, *model.img_size)}; use matching --img-size/--channels")
    t0 = time.perf_counter()
    probs = predict_tensors(model, meta, images, batch_size)
    predict_s = time.perf_counter() - t0
    k = len(meta["classes"])
    cm = confusion_matrix(probs, target, k)
    acc = accuracy(probs, target)
    result = {"split": split, "images": len(target), "accuracy": acc,
              "accuracy_ci95": list(accuracy_interval(round(acc * len(target)), len(target))),
              "top5_accuracy": topk_accuracy(probs, target, 5), "predict_s": round(predict_s, 3),
              "per_class": classification_report(cm, meta["classes"]), "confusion_matrix": cm.tolist()}
    spread = degenerate.OutputSpread()
    spread.update(probs)
    flag_notes(result, [small_split_note(split, len(target), "the accuracy")],
               degenerate=degenerate_note(torch.bincount(probs.argmax(1), minlength=k), spread.std(), meta["classes"]))
    if out_dir is not None:
        from dcvkit.viz.plots import plot_confusion_matrix, plot_predictions

        out_dir = Path(out_dir)
        write_json(out_dir / "results.json", result)
        plot_confusion_matrix(cm, meta["classes"], out_dir / "confusion_matrix.png")
        plot_predictions(images[:24], target[:24], probs[:24], meta["classes"], out_dir / "predictions.png")
    result["_probs"], result["_target"] = probs, target
    return result


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]]
    resized_from: tuple[int, int] | None = None


def predict(weights: str | os.PathLike, images: Sequence[str | os.PathLike], topk: int = 5,
            device: str = "auto") -> list[Prediction]:
    """Top-k classes with probabilities for image files (converted/resized to the model's input)."""
    model, meta = load_classifier(weights, device)
    if getattr(model, "input_ndim", 4) != 4:
        raise ConfigError(f"{weights}: '{meta['model']}' classifies clips, not single images; "
                          "evaluate it with `dcv classify val` on a clip dataset")
    arrays, resized = [], []
    for p in images:
        p = Path(p)
        if not p.is_file():
            raise DataError(f"{p}: no such image file")
        _, size = probe(p)
        resized.append(size if size != tuple(model.img_size) else None)
        arrays.append(torch.from_numpy(decode(p, model.in_chans, tuple(model.img_size))))
    if not arrays:
        raise ConfigError("give at least one image file")
    probs = predict_tensors(model, meta, torch.stack(arrays))
    k = min(topk, probs.shape[1])
    out = []
    for p, pr, rs in zip(images, probs, resized):
        vals, idx = pr.topk(k)
        out.append(Prediction(str(p), [(meta["classes"][i], float(v)) for v, i in zip(vals, idx)], rs))
    return out
