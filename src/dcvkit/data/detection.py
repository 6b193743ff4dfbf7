"""Detection data in memory: images with their boxes and labels (and, once computed, their proposals), from
FashionScenes or from any annotation format (COCO JSON, YOLO txt + data.yaml, Pascal VOC XML), and
conversion between the formats.

Batches are ``(images uint8 (B, C, H, W), boxes [(n_i, 4)], labels [(n_i,)], proposals [(p_i, 4)])``: boxes
``x1, y1, x2, y2`` pixel edges, labels 0-based object classes (no background), ordered per epoch by
``(seed, epoch)`` alone like every dcvkit loader.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from dcvkit.choices import ANNOTATION_FORMATS
from dcvkit.data.annotations import AnnotatedImage, Annotations, safe_path
from dcvkit.data.core import InMemoryImages, Shard, batches_per_epoch, epoch_indices
from dcvkit.errors import DataError

FORMATS = ANNOTATION_FORMATS


@dataclass
class DetectionTensors(InMemoryImages):
    """Images of one size with their objects. ``proposals`` is filled by the detection task (cached)."""

    images: Tensor                 # (N, C, H, W) uint8
    boxes: list[Tensor]            # per image (n_i, 4) float32
    labels: list[Tensor]           # per image (n_i,) int64 in [0, len(classes))
    classes: list[str]             # object classes (background not included)
    files: list[str] = field(default_factory=list)
    proposals: list[Tensor] | None = None

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, "images must be (N, C, H, W) uint8"
        assert len(self.boxes) == len(self.labels) == len(self.images), "one boxes/labels entry per image"

    @property
    def objects(self) -> int:
        return sum(len(b) for b in self.boxes)

    def subset(self, index: Tensor) -> "DetectionTensors":
        idx = index.tolist()
        return DetectionTensors(self.images[index], [self.boxes[i] for i in idx], [self.labels[i] for i in idx],
                                self.classes, [self.files[i] for i in idx] if self.files else [],
                                [self.proposals[i] for i in idx] if self.proposals is not None else None)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0,
               shard: Shard | None = None) -> "DetectionLoader":
        return DetectionLoader(self, batch_size, shuffle=shuffle, seed=seed, shard=shard or Shard())

    def mean_std(self, max_images: int = 2000) -> tuple[list[float], list[float]]:
        return super().mean_std(max_images)



@dataclass
class DetectionLoader:
    data: DetectionTensors
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    shard: Shard = Shard()
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> Tensor:
        return epoch_indices(len(self.data), shuffle=self.shuffle, seed=self.seed, epoch=self.epoch, shard=self.shard)

    def __len__(self) -> int:
        return batches_per_epoch(len(self.data), self.batch_size, self.shard)

    def __iter__(self) -> Iterator[tuple[Tensor, list[Tensor], list[Tensor], list[Tensor]]]:
        d = self.data
        order = self.indices()
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            ids = idx.tolist()
            props = [d.proposals[i] for i in ids] if d.proposals is not None else [torch.zeros(0, 4) for _ in ids]
            yield d.images[idx], [d.boxes[i] for i in ids], [d.labels[i] for i in ids], props


def from_scenes(scenes) -> DetectionTensors:
    """FashionScenes (:class:`dcvkit.data.scenes.Scenes`) as detection data."""
    return DetectionTensors(scenes.images, list(scenes.boxes), list(scenes.labels), list(scenes.item_classes),
                            [f"scene_{i:06d}" for i in range(len(scenes))])


def read_annotations(path: str | Path, split: str = "train") -> Annotations:
    """Any supported format, recognised from ``path``: a ``.json`` file (COCO), a ``.yaml`` file (YOLO data
    YAML; ``split`` picks its train/val/test entry), or a folder with ``Annotations/`` (VOC), with
    ``annotations.json`` (COCO) or with ``data.yaml`` (YOLO)."""
    from dcvkit.data import coco, voc, yolo

    p = Path(path)
    if p.is_dir():
        if (p / "Annotations").is_dir():
            return voc.read(p)
        if (p / "annotations.json").is_file():
            return coco.read(p / "annotations.json")
        for name in ("data.yaml", "dataset.yaml"):
            if (p / name).is_file():
                return yolo.read(p / name, split)
        raise DataError(f"{p}: not a detection dataset (expected Annotations/ for VOC, annotations.json for COCO, "
                        "or data.yaml for YOLO)")
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder")
    if p.suffix.lower() == ".json":
        return coco.read(p)
    if p.suffix.lower() in (".yaml", ".yml"):
        return yolo.read(p, split)
    raise DataError(f"{p}: unknown annotation file type; give a COCO .json, a YOLO data .yaml or a VOC folder")


def yaml_names_split(path: str | Path, key: str, unlike: str | None = None) -> bool:
    """Whether ``path`` is a YOLO data YAML that names a ``key`` split (one other than its ``unlike`` split)."""
    from dcvkit.config import load_yaml

    p = Path(path)
    if p.suffix.lower() not in (".yaml", ".yml") or not p.is_file():
        return False
    spec = load_yaml(p)
    return bool(spec.get(key)) and (unlike is None or spec.get(key) != spec.get(unlike))


def to_tensors(ann: Annotations, img_size: int | tuple[int, int] | None = None, channels: int = 3,
               workers: int = 4) -> DetectionTensors:
    """Decode every image (resized to ``img_size``, default the first image's size) and scale its boxes
    with it. A missing or unreadable image is an error naming the image and the annotation file."""
    from concurrent.futures import ThreadPoolExecutor

    from dcvkit.data.folders import decode

    if not ann.images:
        raise DataError(f"{ann.root}: the annotations list no images")
    if img_size is None:
        size = (ann.images[0].height, ann.images[0].width)
    else:
        size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)

    def one(im: AnnotatedImage) -> np.ndarray:
        path = safe_path(ann.root, im.file, str(ann.root))
        if not path.is_file():
            raise DataError(f"{path}: image file missing (listed in the annotations of {ann.root})")
        return decode(path, channels, size)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        arrays = list(pool.map(one, ann.images))
    boxes = []
    for im in ann.images:
        sx, sy = size[1] / im.width, size[0] / im.height
        boxes.append(im.boxes.float() * torch.tensor([sx, sy, sx, sy]))
    return DetectionTensors(torch.from_numpy(np.stack(arrays)), boxes, [im.labels.long() for im in ann.images],
                            list(ann.classes), [im.file for im in ann.images])


def convert(src: str | Path, out: str | Path, fmt: str, split: str = "train") -> tuple[Annotations, Path]:
    """Read ``src`` in any format and write it as ``fmt`` into the new folder ``out``, images copied along
    (under ``images/`` for YOLO, ``JPEGImages/`` for VOC). Returns the annotations and the written path."""
    from dcvkit.data import coco, voc, yolo
    from dcvkit.data.annotations import empty_out_dir
    from dcvkit.io import atomic_write

    if fmt not in FORMATS:
        raise DataError(f"unknown format '{fmt}'; choose {', '.join(FORMATS)}")
    ann = read_annotations(src, split)
    root = empty_out_dir(out)
    folder = {"coco": "images", "yolo": "images", "voc": "JPEGImages"}[fmt]
    images = []
    for im in ann.images:
        source = safe_path(ann.root, im.file, str(src))
        if not source.is_file():
            raise DataError(f"{source}: image file missing (listed in {src})")
        rel = f"{folder}/{Path(im.file).name}"
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            raise DataError(f"{src}: two images named {Path(im.file).name}; converted datasets keep one folder "
                            "of images, so names must be unique")
        shutil.copyfile(source, dest)
        images.append(AnnotatedImage(rel, im.width, im.height, im.boxes, im.labels, im.masks))
    new = Annotations(root, list(ann.classes), images)
    if fmt == "coco":
        path = coco.write(new, root / "annotations.json")
    elif fmt == "yolo":
        path = yolo.write(new, root)
    else:
        path = voc.write(new, root)
        atomic_write(root / "classes.txt", "".join(c + "\n" for c in new.classes))
    return new, path


__all__ = ["DetectionTensors", "DetectionLoader", "from_scenes", "read_annotations", "to_tensors", "convert",
           "yaml_names_split", "FORMATS"]
