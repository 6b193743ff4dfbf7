"""Pose data in memory: images letterboxed to one size with their people's boxes, keypoints and areas, from
generated figures (:mod:`dcvkit.data.figures`) or from a COCO keypoints / YOLO-pose dataset
(:mod:`dcvkit.data.keypoints`) of images of any size.

Batches are ``(images uint8 (B, C, H, W), boxes [(n_i, 4)], keypoints [(n_i, K, 3)], areas [(n_i,)])`` in
the letterboxed images' pixels, ordered per epoch by ``(seed, epoch)`` alone like every dcvkit loader;
``placements`` map each image back to its original pixels (where metrics are computed). Areas scale with
the letterbox (OKS is computed in the pixels it is given).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from dcvkit.data.core import InMemoryImages, PerImageLoader
from dcvkit.data.keypoints import KeypointSchema, PoseAnnotations
from dcvkit.data.letterbox import Placement, PlacedObjects
from dcvkit.errors import DataError


@dataclass
class PoseTensors(PlacedObjects, InMemoryImages):
    """Images with their people (see the module docstring)."""

    images: Tensor
    boxes: list[Tensor]
    keypoints: list[Tensor]
    areas: list[Tensor]
    schema: KeypointSchema
    classes: list[str] = field(default_factory=lambda: ["person"])
    files: list[str] = field(default_factory=list)
    placements: list[Placement] | None = None

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, "images must be (N, C, H, W) uint8"
        assert len(self.boxes) == len(self.keypoints) == len(self.areas) == len(self.images)

    def subset(self, index: Tensor) -> "PoseTensors":
        idx = index.tolist()
        return PoseTensors(self.images[index], [self.boxes[i] for i in idx], [self.keypoints[i] for i in idx],
                           [self.areas[i] for i in idx], self.schema, self.classes,
                           [self.files[i] for i in idx] if self.files else [],
                           [self.placements[i] for i in idx] if self.placements is not None else None)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0, shard=None) -> "PoseLoader":
        from dcvkit.data.core import Shard

        return PoseLoader(self, batch_size, shuffle=shuffle, seed=seed, shard=shard or Shard())

    def original(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image ``i``'s boxes, keypoints and areas in its original pixels."""
        return to_original(self.placement(i), self.boxes[i].numpy(), self.keypoints[i].numpy(), self.areas[i].numpy())


def to_original(p: Placement, boxes: np.ndarray, keypoints: np.ndarray, areas: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, keypoints (x, y; the third column kept) and areas from letterbox pixels to original ones."""
    b = (np.asarray(boxes, np.float64) - [p.px, p.py, p.px, p.py]) / [p.sx, p.sy, p.sx, p.sy]
    k = np.array(keypoints, np.float64, copy=True)
    k[..., 0] = (k[..., 0] - p.px) / p.sx
    k[..., 1] = (k[..., 1] - p.py) / p.sy
    a = None if areas is None else np.asarray(areas, np.float64) / (p.sx * p.sy)
    return b, k, a


class PoseLoader(PerImageLoader):
    """Batches of :class:`PoseTensors`: ``(images, [boxes], [keypoints], [areas])``."""

    fields = ("boxes", "keypoints", "areas")


def from_figures(items, n: int, size: int = 128, seed: int = 0, progress: bool = False) -> PoseTensors:
    """``n`` figure images (:func:`dcvkit.data.figures.figure_image`) of ``items``, in memory."""
    from dcvkit.data.figures import FigureConfig, figure_image
    from dcvkit.data.keypoints import COCO17_SCHEMA

    cfg = FigureConfig(size=size, height=(0.44 * size, 0.88 * size))
    it = range(n)
    if progress:
        from dcvkit.progress import track

        it = track(it, description=f"drawing {n} figure images")
    images, boxes, kps, areas = [], [], [], []
    for i in it:
        im, a = figure_image(items, cfg, seed, i)
        images.append(torch.from_numpy(im).permute(2, 0, 1))
        boxes.append(torch.tensor(a.boxes, dtype=torch.float32).reshape(-1, 4))
        kps.append(torch.tensor(a.keypoints, dtype=torch.float32).reshape(-1, 17, 3))
        areas.append(torch.tensor(a.areas, dtype=torch.float32))
    return PoseTensors(torch.stack(images), boxes, kps, areas, COCO17_SCHEMA,
                       files=[f"figure_{i:06d}" for i in range(n)])


def from_annotations(ann: PoseAnnotations, size: tuple[int, int] | None = None) -> PoseTensors:
    """A pose dataset's images, decoded and letterboxed to ``size`` (default: the first image's, longest side
    at most 640, sides multiples of 32), with their people moved into the letterbox."""
    from dcvkit.data.letterbox import default_size, read_letterboxed

    if not ann.images:
        raise DataError(f"{ann.root}: the pose annotations list no images")
    first = ann.images[0]
    size = size or default_size(first.height, first.width, None)
    images, boxes, kps, areas, placements = [], [], [], [], []
    for im in ann.images:
        arr, p = read_letterboxed(ann.root / im.file, 3, size)
        images.append(torch.from_numpy(np.ascontiguousarray(arr)))  # (C, H, W)
        k = np.array(im.keypoints, np.float64, copy=True)
        k[..., 0] = np.where(k[..., 2] > 0, k[..., 0] * p.sx + p.px, 0)
        k[..., 1] = np.where(k[..., 2] > 0, k[..., 1] * p.sy + p.py, 0)
        boxes.append(p.to_letterbox(torch.from_numpy(np.asarray(im.boxes, np.float64).reshape(-1, 4))))
        kps.append(torch.tensor(k, dtype=torch.float32).reshape(-1, len(ann.schema), 3))
        areas.append(torch.tensor(np.asarray(im.areas) * p.sx * p.sy, dtype=torch.float32))
        placements.append(p)
    return PoseTensors(torch.stack(images), boxes, kps, areas, ann.schema, [ann.category],
                       [im.file for im in ann.images], placements)


__all__ = ["PoseTensors", "PoseLoader", "from_figures", "from_annotations", "to_original"]
