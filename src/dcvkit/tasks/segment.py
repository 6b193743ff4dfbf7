"""Semantic segmentation (a class per pixel) and reconstruction (the convolutional autoencoder).

Python API (the CLI calls exactly these)::

    from dcvkit.tasks.segment import SegmentConfig, train, evaluate, predict
    result = train(SegmentConfig(data="scenes", model="unet"))      # FashionScenes, 10 classes + background
    evaluate(result.run_dir)                                         # per-class Dice and IoU on the test scenes
    predict(result.run_dir, ["street.png"], out_dir="masks/")        # colour-coded masks and overlays

    train(AutoencoderConfig())      # conv_autoencoder reconstructing Fashion-MNIST (target "image")

Batches are ``(uint8 images (B, C, H, W), uint8 masks (B, H, W))``; with ``target="image"`` the mask is
unused and the (augmented) input itself is the target.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from dcvkit.augment import Augmenter, parse_augment
from dcvkit.config import TrainConfig, from_dict
from dcvkit.data import DataSplits
from dcvkit.data.masks import IGNORE
from dcvkit.engine import build_optimizer, epoch_seed, param_groups, seed_everything
from dcvkit.errors import ConfigError, DataError
from dcvkit.io import load_checkpoint, write_json
from dcvkit.losses.segmentation import LOSSES, RECONSTRUCTION_LOSSES, reconstruction_loss, segmentation_loss
from dcvkit.metrics import degenerate
from dcvkit.metrics.segmentation import confusion, scores
from dcvkit.models import create_model
from dcvkit.models.normalise import Normaliser
from dcvkit.models.trained import load_run_model
from dcvkit.tasks import get_task
from dcvkit.tasks.common import ImageTask, TrainResult, fit_run, flag_notes, model_kwargs, start_config
from dcvkit.tasks.configs import AutoencoderConfig, SegmentConfig

# --- data ------------------------------------------------------------------------------------------


def load_splits(cfg: SegmentConfig) -> DataSplits:
    """The run's train / val / test splits: FashionScenes, a folder of images/ + masks/, or (reconstruction)
    any classification data."""
    from dcvkit.data.splits import segmentation_splits

    return segmentation_splits(cfg.data, target=cfg.target, val_split=cfg.val_split, seed=cfg.seed,
                               img_size=cfg.img_size, limit=cfg.limit, scenes=cfg.scenes, test_scenes=cfg.test_scenes,
                               scene_seed=cfg.scene_seed, data_dir=cfg.data_dir, download=cfg.download,
                               memory_mb=cfg.memory_mb)


# --- the task ---------------------------------------------------------------------------------------


def ids_from_logits(logits: Tensor) -> Tensor:
    """Class ids (B, H, W): argmax over classes, or sigmoid > 0.5 for a one-channel (binary) head."""
    return (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)


class SegmentationTask(ImageTask):
    """Per-pixel classification (``target="mask"``) or reconstruction (``target="image"``) of uint8 batches,
    augmented (images and masks together) and normalised on the device."""

    def __init__(self, model: nn.Module, cfg: SegmentConfig, classes: list[str], normaliser: Normaliser,
                 model_kwargs: dict[str, Any], augmenter: Augmenter | None = None):
        self.model, self.cfg, self.classes = model, cfg, classes
        self.model_kwargs = dict(model_kwargs)
        self.normaliser, self.augmenter = normaliser, augmenter
        self.loss_name = resolve_loss(cfg)
        self.num_classes = len(classes)
        self._cm: Tensor | None = None
        self._notes: list[str] = []
        self._sums: list[Tensor] = []
        self._crops = torch.Generator().manual_seed(cfg.seed + 5)

    def configure_optimizers(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        return build_optimizer(param_groups(self.model, cfg.weight_decay), cfg)

    def on_train_epoch_start(self, epoch: int) -> None:
        if self.augmenter is not None:
            self.augmenter.reseed(epoch_seed(self.cfg.seed, epoch))

    def _augment(self, images: Tensor, masks: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if self.augmenter is None or not self.augmenter.cfg.random:
            return images, masks
        out = self.augmenter.augment(images, masks if self.cfg.target == "mask" else None)
        return out.images, out.masks if self.cfg.target == "mask" else masks

    def loss(self, logits: Tensor, images: Tensor, masks: Tensor | None) -> Tensor:
        if self.cfg.target == "image":
            return reconstruction_loss(self.loss_name, logits, (images.float() / 255).clamp(0, 1))
        assert masks is not None
        return segmentation_loss(self.loss_name, logits, masks.long(), self.cfg.dice_smooth, IGNORE,
                                 self.cfg.dice_weight)

    def generators(self) -> dict[str, torch.Generator]:
        return {**super().generators(), "crops": self._crops}

    def training_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        images, masks = batch
        if self.cfg.crop:
            images, masks = random_crops(images, masks, self.cfg.crop, self._crops)
        images, masks = self._augment(images, masks if self.cfg.target == "mask" else None)
        logits = self.model(self.preprocess(images))
        loss = self.loss(logits, images, masks)
        logs: dict[str, Tensor] = {}
        if self.cfg.target == "mask":
            assert masks is not None
            valid = masks != IGNORE
            logs["pixel_acc"] = ((ids_from_logits(logits.detach()) == masks) & valid).sum() / valid.sum().clamp_min(1)
        return loss, logs

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> None:
        images, masks = batch
        logits = self.model(self.preprocess(images)).float()
        loss = self.loss(logits, images, masks if self.cfg.target == "mask" else None)
        n = torch.tensor(float(len(images)), device=logits.device)
        if self.cfg.target == "image":
            mse = ((logits.sigmoid() - images.float() / 255) ** 2).mean((1, 2, 3))
            psnr = (10 * torch.log10(1 / mse.clamp_min(1e-10))).sum()
            self._sums.append(torch.stack([loss * n, n, mse.sum(), psnr]))
            return
        self._sums.append(torch.stack([loss * n, n]))
        cm = confusion(ids_from_logits(logits), masks, self.num_classes, IGNORE)
        self._cm = cm if self._cm is None else self._cm + cm

    def validation_epoch_end(self) -> dict[str, float]:
        sums = torch.stack(self._sums).sum(0).tolist()
        self._sums.clear()
        out = {"val_loss": sums[0] / sums[1]}
        if self.cfg.target == "image":
            out.update(val_mse=sums[2] / sums[1], val_psnr=sums[3] / sums[1])
            return out
        assert self._cm is not None
        s = scores(self._cm, self.classes)
        self._notes = [degenerate_note(self._cm, self.classes)]
        self._cm = None
        out.update(val_dice=s["mean_dice"], val_iou=s["mean_iou"], val_pixel_acc=s["pixel_accuracy"])
        return out

    def validation_notes(self) -> list[str]:
        return self._notes

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"task": "segment", "target": self.cfg.target, "model": self.cfg.model,
                "model_kwargs": self.model_kwargs, "classes": self.classes, "crop": self.cfg.crop,
                **self.normalisation_meta()}


def degenerate_note(cm: Tensor, classes: Sequence[str]) -> str:
    """What :func:`dcvkit.metrics.degenerate.one_class` says of a confusion matrix (rows truth, columns
    prediction), with what to change; empty when the predictions are not degenerate."""
    note = degenerate.one_class(cm.sum(0), classes, "pixel", truth=cm.sum(1))
    return (f"{note} (train longer or at a higher --lr, use --loss ce_dice or dice, which weigh the rare classes, "
            "and check that the masks hold the classes)") if note else ""


def random_crops(images: Tensor, masks: Tensor, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A random ``size`` x ``size`` window of each image (B, C, H, W) and its mask (B, H, W) (images smaller
    than ``size`` are kept whole, so ``size`` must not exceed the training size: checked by train)."""
    h, w = images.shape[-2:]
    if size >= h and size >= w:
        return images, masks
    ch, cw = min(size, h), min(size, w)
    ys = torch.randint(0, h - ch + 1, (len(images),), generator=generator).tolist()
    xs = torch.randint(0, w - cw + 1, (len(images),), generator=generator).tolist()
    return (torch.stack([im[:, y:y + ch, x:x + cw] for im, y, x in zip(images, ys, xs)]),
            torch.stack([m[y:y + ch, x:x + cw] for m, y, x in zip(masks, ys, xs)]))


def resolve_loss(cfg: SegmentConfig) -> str:
    if cfg.loss == "auto":
        return "mse" if cfg.target == "image" else "ce_dice"
    allowed = RECONSTRUCTION_LOSSES if cfg.target == "image" else LOSSES
    if cfg.loss not in allowed:
        raise ConfigError(f"--loss {cfg.loss} does not fit --target {cfg.target}; choose {', '.join(allowed)}")
    return cfg.loss


def segmenter_kwargs(cfg: SegmentConfig, splits: DataSplits) -> dict[str, Any]:
    """Registry kwargs: output channels (one per class, one for two classes: a sigmoid head; the image's
    channels for reconstruction), input channels, size, and the model options given."""
    if cfg.target == "image":
        out = splits.channels
    else:
        out = 1 if splits.num_classes == 2 else splits.num_classes
    return model_kwargs(get_task("segment"), cfg, num_classes=out, in_chans=splits.channels,
                        img_size=list(splits.img_size))


def build_augmenter(cfg: SegmentConfig) -> Augmenter | None:
    aug = parse_augment(cfg.augment)
    if aug is None:
        return None
    if aug.standardizes and aug.needs_fit:
        raise ConfigError("--augment: featurewise/ZCA standardization is for classification; segmentation "
                          "normalises with the data's mean/std")
    return Augmenter(aug, cfg.seed)


# --- train / evaluate / predict ------------------------------------------------------------------------


def train(cfg: SegmentConfig, run_dir: str | os.PathLike | None = None, splits: DataSplits | None = None
          ) -> TrainResult:
    """Train a segmentation model or an autoencoder; writes a run directory and returns it.

    ``splits``: data already loaded (the benchmark reuses one FashionScenes split for every model)."""
    cfg, ckpt, run_dir = start_config(cfg, run_dir)
    if cfg.target == "image" and cfg.monitor == "val_dice":
        cfg = dataclasses.replace(cfg, monitor="val_loss")
    resolve_loss(cfg)
    seed_everything(cfg.seed, cfg.deterministic)
    augmenter = build_augmenter(cfg)
    if augmenter is not None:
        cfg = dataclasses.replace(cfg, augment=augmenter.cfg.inline() or None)
    splits = splits if splits is not None else load_splits(cfg)
    if cfg.target == "mask" and splits.num_classes < 2:
        raise DataError(f"{cfg.data}: segmentation needs at least 2 classes (background and one more)")
    if cfg.crop is not None and not 16 <= cfg.crop <= min(splits.img_size):
        raise ConfigError(f"--crop {cfg.crop}: give a window of 16 pixels up to the images' shorter side "
                          f"({min(splits.img_size)}; the training size is {splits.img_size[0]}x{splits.img_size[1]})")
    kw = segmenter_kwargs(cfg, splits)
    model = create_model(cfg.model, **kw)
    if ckpt:
        mean, std = ckpt["meta"]["mean"], ckpt["meta"]["std"]
    else:
        mean, std = splits.train.mean_std()
    task = SegmentationTask(model, cfg, list(splits.classes), Normaliser(mean, std, augmenter), kw, augmenter)
    h, w = splits.img_size  # validation sees whole images: 64 of 128x128, as many pixels of larger ones
    return fit_run(task, cfg, splits, run_dir, cfg.run_folder, evaluate, ckpt, test=cfg.test,
                   val_batch=max(1, min(64, 64 * 128 * 128 // (h * w))))


def load_segmenter(weights: str | os.PathLike, device: str = "cpu", ckpt: dict[str, Any] | None = None
                   ) -> tuple[nn.Module, dict[str, Any]]:
    """A trained segmentation model or autoencoder (eval mode) and its meta, from a run dir or .pt file."""
    return load_run_model(weights, "segment", "dcv segment train or dcv autoencoder train", device, ckpt,
                          channels_last=True)


def tile_starts(length: int, tile: int, overlap: float = 0.25) -> list[int]:
    """Offsets of windows of ``tile`` covering ``length`` with at least ``overlap`` of a tile shared between
    neighbours (the last window flush with the end)."""
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def tiled_logits(model: nn.Module, x: Tensor, tile: int, overlap: float = 0.25) -> Tensor:
    """The model's logits for normalised images ``x`` (N, C, H, W) from overlapping ``tile`` x ``tile``
    windows, averaged where they overlap (each window's centre weighted most: a Hann-like ramp, so seams
    do not show): how a U-Net trained on crops sees a large image at the scale it learnt."""
    h, w = x.shape[-2:]
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    th, tw = min(tile, h), min(tile, w)
    ramp_y = torch.hann_window(th + 2, periodic=False, device=x.device)[1:-1]
    ramp_x = torch.hann_window(tw + 2, periodic=False, device=x.device)[1:-1]
    weight = (ramp_y[:, None] * ramp_x[None]).clamp_min(1e-3)
    total, norm = None, x.new_zeros(h, w)
    for y in ys:
        for x0 in xs:
            out = model(x[..., y:y + th, x0:x0 + tw]).float() * weight
            if total is None:
                total = x.new_zeros(x.shape[0], out.shape[1], h, w)
            total[..., y:y + th, x0:x0 + tw] += out
            norm[y:y + th, x0:x0 + tw] += weight
    assert total is not None
    return total / norm


@torch.inference_mode()
def predict_tensors(model: nn.Module, meta: dict[str, Any], images: Tensor, batch_size: int = 32) -> Tensor:
    """Class ids (N, H, W) uint8 for uint8 images (N, C, H, W); reconstructions (N, C, H, W) uint8 for an
    autoencoder. A model trained on crops sees images larger than its crop through overlapping tiles."""
    dev = next(model.parameters()).device
    normalise = Normaliser.from_meta(meta)
    tile = meta.get("crop")
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(dev).contiguous(memory_format=torch.channels_last)
        if tile and max(x.shape[-2:]) > tile:
            logits = tiled_logits(model, normalise(x), tile)
        else:
            logits = model(normalise(x)).float()
        if meta.get("target") == "image":
            out.append((logits.sigmoid() * 255).round().to(torch.uint8).cpu())
        else:
            out.append(ids_from_logits(logits).to(torch.uint8).cpu())
    return torch.cat(out)


def evaluate(weights: str | os.PathLike, *, data: Any = None, split: str = "test", device: str = "auto",
             out_dir: str | os.PathLike | None = None, batch_size: int = 32, workers: int = 2) -> dict[str, Any]:
    """Per-class Dice and IoU, their foreground means and pixel accuracy (or, for an autoencoder, MSE and
    PSNR) of a checkpoint on a split. ``data``: in-memory split, a dataset, or None for the run's own.
    Writes ``results.json`` and ``predictions.png`` into ``out_dir`` when given."""
    ckpt = load_checkpoint(weights, map_location="cpu")
    model, meta = load_segmenter(weights, device, ckpt)
    if data is None or isinstance(data, (str, os.PathLike)):
        cfg = from_dict(SegmentConfig, ckpt.get("config", {}), where=str(weights))
        if data is not None:
            cfg = dataclasses.replace(cfg, data=str(data))
        data = getattr(load_splits(cfg), split)
        if data is None:
            raise DataError(f"{cfg.data}: has no '{split}' split")
    if data.channels != model.in_chans:
        raise DataError(f"data has {data.channels} channels, the model expects {model.in_chans}")
    import time

    reconstruct = meta.get("target") == "image"
    classes = meta["classes"]
    cm, mse, shown, seconds = None, [], None, 0.0
    for images, targets in data.loader(batch_size, shuffle=False, workers=workers):  # streamed data: per batch
        t0 = time.perf_counter()
        pred = predict_tensors(model, meta, images, batch_size)
        seconds += time.perf_counter() - t0
        if shown is None:
            shown = (images[:16], targets[:16], pred[:16])
        if reconstruct:
            mse.append(((pred.float() - images.float()) / 255).pow(2).mean((1, 2, 3)))
        else:
            part = confusion(pred, targets, len(classes), IGNORE)
            cm = part if cm is None else cm + part
    n = len(data)
    result: dict[str, Any] = {"split": split, "images": n, "images_per_s": round(n / max(seconds, 1e-9), 1)}
    if reconstruct:
        m = torch.cat(mse)
        result.update(mse=float(m.mean()), psnr=float((10 * torch.log10(1 / m.clamp_min(1e-10))).mean()))
    else:
        assert cm is not None
        result.update(scores(cm, classes))
        result["confusion_matrix"] = cm.tolist()
        flag_notes(result, [], degenerate=degenerate_note(cm, classes))
    if out_dir is not None and shown is not None:
        out_dir = Path(out_dir)
        write_json(out_dir / "results.json", result)
        from dcvkit.viz.segment import plot_reconstructions, plot_segmentations

        images, targets, pred = shown
        if reconstruct:
            plot_reconstructions(images, pred, out_dir / "reconstructions.png")
        else:
            plot_segmentations(images[:8], targets[:8], pred[:8], classes, out_dir / "predictions.png")
    return result


@dataclass
class SegmentPrediction:
    path: str
    mask: Path | None
    overlay: Path | None
    pixels: dict[str, int]


def predict(weights: str | os.PathLike, images: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
            device: str = "auto", alpha: float = 0.5) -> list[SegmentPrediction]:
    """For each image file: ``<stem>_mask.png`` (a palette PNG: class ids you can read, colours you can see)
    and ``<stem>_overlay.png``; for an autoencoder ``<stem>_reconstruction.png``. Any image size."""
    from dcvkit.data.annotations import palette, write_png
    from dcvkit.data.folders import decode

    model, meta = load_segmenter(weights, device)
    if not images:
        raise ConfigError("give at least one image file")
    out_dir = Path(out_dir)
    pal = np.array(palette(), dtype=np.uint8).reshape(-1, 3)
    results = []
    for p in map(Path, images):
        if not p.is_file():
            raise DataError(f"{p}: no such image file")
        x = torch.from_numpy(decode(p, model.in_chans, None))[None]
        y = predict_tensors(model, meta, x)[0]
        img = x[0].permute(1, 2, 0).numpy()
        rgb = np.repeat(img, 3, -1) if img.shape[-1] == 1 else img
        if meta.get("target") == "image":
            rec = y.permute(1, 2, 0).numpy()
            path = out_dir / f"{p.stem}_reconstruction.png"
            write_png(path, rec[..., 0] if rec.shape[-1] == 1 else rec)
            results.append(SegmentPrediction(str(p), path, None, {}))
            continue
        ids = y.numpy()
        mask_path, overlay_path = out_dir / f"{p.stem}_mask.png", out_dir / f"{p.stem}_overlay.png"
        write_png(mask_path, ids, palette())
        colour = pal[ids]
        fg = (ids > 0)[..., None]
        blend = np.where(fg, (1 - alpha) * rgb + alpha * colour, rgb).round().astype(np.uint8)
        write_png(overlay_path, blend)
        counts = np.bincount(ids.flatten(), minlength=len(meta["classes"]))
        results.append(SegmentPrediction(str(p), mask_path, overlay_path,
                                         {c: int(n) for c, n in zip(meta["classes"], counts) if n}))
    return results


__all__ = ["SegmentConfig", "AutoencoderConfig", "SegmentationTask", "train", "evaluate", "predict",
           "load_segmenter", "predict_tensors", "load_splits", "ids_from_logits", "random_crops", "tiled_logits",
           "tile_starts"]
