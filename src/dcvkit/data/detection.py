"""Detection data: images with their boxes and labels (and, once computed, their proposals), from
FashionScenes or from any annotation format (COCO JSON, YOLO txt + data.yaml, Pascal VOC XML), and
conversion between the formats.

A user's images, of any sizes and aspect ratios, are letterboxed to one training size (boxes moved with
them; each image's :class:`~dcvkit.data.letterbox.Placement` maps back to its original pixels) and held in memory
when they fit (:class:`DetectionTensors`), else streamed from their files (:class:`DetectionFiles`).

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
from dcvkit.data.core import InMemoryImages, Shard, StreamLoader, sampled_mean_std, stream_batches
from dcvkit.data.letterbox import Placement, PlacedObjects, default_size, read_letterboxed
from dcvkit.errors import DataError

FORMATS = ANNOTATION_FORMATS


@dataclass
class DetectionTensors(PlacedObjects, InMemoryImages):
    """Images letterboxed to one size, held in memory, with their objects. ``placements`` map each image back
    to its original pixels (None: the images are their own originals, as generated scenes are);
    ``proposals`` is filled by the detection task (cached)."""

    images: Tensor                 # (N, C, H, W) uint8
    boxes: list[Tensor]            # per image (n_i, 4) float32, in the letterboxed image's pixels
    labels: list[Tensor]           # per image (n_i,) int64 in [0, len(classes))
    classes: list[str]             # object classes (background not included)
    files: list[str] = field(default_factory=list)  # each image's file, when read from disk
    proposals: list[Tensor] | None = None
    placements: list[Placement] | None = None

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, "images must be (N, C, H, W) uint8"
        assert len(self.boxes) == len(self.labels) == len(self.images), "one boxes/labels entry per image"

    def subset(self, index: Tensor) -> "DetectionTensors":
        idx = index.tolist()
        return DetectionTensors(self.images[index], [self.boxes[i] for i in idx], [self.labels[i] for i in idx],
                                self.classes, [self.files[i] for i in idx] if self.files else [],
                                [self.proposals[i] for i in idx] if self.proposals is not None else None,
                                [self.placements[i] for i in idx] if self.placements is not None else None)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0,
               shard: Shard | None = None) -> "DetectionLoader":
        return DetectionLoader(self, batch_size, shuffle=shuffle, seed=seed, shard=shard or Shard())

    def mean_std(self, max_images: int = 2000) -> tuple[list[float], list[float]]:
        return super().mean_std(max_images)


@dataclass
class DetectionFiles(PlacedObjects):
    """Detection data streamed from its files: each batch is decoded and letterboxed ahead of use by decoding
    threads (:func:`~dcvkit.data.letterbox.read_letterboxed`, the in-memory path's own function, so both
    give the same batches). Memory holds the annotations only, whatever the number of images."""

    paths: list[Path]
    boxes: list[Tensor]
    labels: list[Tensor]
    classes: list[str]
    placements: list[Placement] | None
    size: tuple[int, int]
    channels: int = 3
    files: list[str] = field(default_factory=list)
    proposals: None = None  # external proposals are computed on images in memory

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def img_size(self) -> tuple[int, int]:
        return self.size

    def subset(self, index: Tensor) -> "DetectionFiles":
        idx = index.tolist()
        return DetectionFiles([self.paths[i] for i in idx], [self.boxes[i] for i in idx],
                              [self.labels[i] for i in idx], self.classes,
                              [self.placements[i] for i in idx] if self.placements is not None else None, self.size,
                              self.channels, [self.files[i] for i in idx] if self.files else [])

    def read(self, i: int) -> tuple[np.ndarray]:
        arr, got = read_letterboxed(self.paths[i], self.channels, self.size)
        want = self.placements[i] if self.placements is not None else got
        if (got.height, got.width) != (want.height, want.width):
            raise DataError(f"{self.paths[i]}: the image is {got.width}x{got.height} but its annotations say "
                            f"{want.width}x{want.height}; fix the annotations' image size")
        return (arr,)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 2,
               shard: Shard | None = None) -> "DetectionLoader":
        return DetectionLoader(self, batch_size, shuffle=shuffle, seed=seed, shard=shard or Shard(), workers=workers)

    def mean_std(self, max_images: int = 200) -> tuple[list[float], list[float]]:
        return sampled_mean_std(self, max_images)


class DetectionLoader(StreamLoader):
    """Batches of detection data, in memory (tensor indexing) or streamed (the batch's files decoded ahead by
    ``workers`` threads): the same batches in the same order either way (the epoch's order is
    :class:`~dcvkit.data.core.StreamLoader`'s)."""

    data: DetectionTensors | DetectionFiles

    def _images(self, order: Tensor) -> Iterator[Tensor]:
        d = self.data
        if isinstance(d, DetectionTensors):
            for b in range(len(self)):
                yield d.images[order[b * self.batch_size:(b + 1) * self.batch_size]]
            return
        for (images,) in stream_batches(d, order, self.batch_size, self.workers):
            yield images

    def __iter__(self) -> Iterator[tuple[Tensor, list[Tensor], list[Tensor], list[Tensor]]]:
        d = self.data
        order = self.indices()
        for b, images in enumerate(self._images(order)):
            ids = order[b * self.batch_size:(b + 1) * self.batch_size].tolist()
            props = [d.proposals[i] for i in ids] if d.proposals is not None else [torch.zeros(0, 4) for _ in ids]
            yield images, [d.boxes[i] for i in ids], [d.labels[i] for i in ids], props


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


def detection_files(ann: Annotations, img_size: int | tuple[int, int] | None = None, channels: int = 3
                    ) -> DetectionFiles:
    """Annotated images as :class:`DetectionFiles` letterboxed to one training size (``img_size``, else
    :func:`~dcvkit.data.letterbox.default_size` of the first image), boxes moved with them (nothing is
    decoded yet). A missing image is an error naming it and the annotation file."""
    if not ann.images:
        raise DataError(f"{ann.root}: the annotations list no images")
    first = ann.images[0]
    size = default_size(first.height, first.width, img_size)
    paths = []
    for im in ann.images:
        path = safe_path(ann.root, im.file, str(ann.root))
        if not path.is_file():
            raise DataError(f"{path}: image file missing (listed in the annotations of {ann.root})")
        paths.append(path)
    placements = [Placement.fit(im.height, im.width, size) for im in ann.images]
    boxes = [f.to_letterbox(im.boxes.float()) for f, im in zip(placements, ann.images)]
    return DetectionFiles(paths, boxes, [im.labels.long() for im in ann.images], list(ann.classes), placements,
                          size, channels, [str(p) for p in paths])


def decoded_mb(*parts: DetectionFiles | None) -> float:
    """Megabytes the parts' images take decoded (uint8, at their training size)."""
    return sum(len(p) * p.channels * p.size[0] * p.size[1] for p in parts if p is not None) / 2**20


def hold(files: DetectionFiles | None, stream: bool, workers: int = 4) -> DetectionTensors | DetectionFiles | None:
    """``files`` decoded into memory, or as they are (streamed per batch) when ``stream``."""
    return files if files is None or stream else to_tensors(files, workers)


def to_tensors(files: DetectionFiles, workers: int = 4) -> DetectionTensors:
    """Every image of ``files`` decoded (threads: PIL releases the GIL) into one in-memory tensor."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, workers)) as pool:
        arrays = [a for a, in pool.map(files.read, range(len(files)))]
    return DetectionTensors(torch.from_numpy(np.stack(arrays)), files.boxes, files.labels, files.classes,
                            files.files, None, files.placements)


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


__all__ = ["DetectionTensors", "DetectionFiles", "DetectionLoader", "from_scenes", "read_annotations",
           "detection_files", "decoded_mb", "hold", "to_tensors", "convert",
           "yaml_names_split", "FORMATS"]
