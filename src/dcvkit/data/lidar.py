"""Point-cloud frames for ``dcv detect3d``: simulated scenes (made once, kept in memory) or a KITTI-layout
folder (each frame read from its files when a batch needs it: a dataset larger than memory streams), and the
batches a 3-D detector trains on.

A batch is ``(points (B, N, 4) float32 padded, counts (B,), [boxes (M, 7)], [labels (M,)])``: LiDAR boxes of
the detected classes (:data:`~dcvkit.data.kitti.CLASSES`); other classes (Van, DontCare...) stay in the
frame's labels for the evaluation's rules and out of training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from dcvkit.data.core import DataSplits, StreamLoader, epoch_permutation
from dcvkit.data.kitti import CLASSES, KittiFolder, KittiFrame
from dcvkit.errors import DataError


@dataclass
class LidarFrames:
    """Frames from memory (``frames``) or from a KITTI folder (``folder`` + the frame indices ``index``)."""

    classes: list[str]
    frames: list[KittiFrame] | None = None
    folder: KittiFolder | None = None
    index: list[int] = field(default_factory=list)
    name: str = "lidar scenes"

    def __len__(self) -> int:
        return len(self.frames) if self.frames is not None else len(self.index)

    def frame(self, i: int) -> KittiFrame:
        if self.frames is not None:
            return self.frames[i]
        assert self.folder is not None
        return self.folder.frame(self.index[i])

    def subset(self, idx: Sequence[int]) -> "LidarFrames":
        idx = [int(i) for i in idx]
        if self.frames is not None:
            return LidarFrames(self.classes, [self.frames[i] for i in idx], name=self.name)
        return LidarFrames(self.classes, None, self.folder, [self.index[i] for i in idx], self.name)

    # what DataSplits asks of every dataset (a cloud's 4 values per point; KITTI's image size)
    channels, img_size = 4, (375, 1242)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0, shard: Any = None
               ) -> "FrameLoader":
        kw = {"shard": shard} if shard is not None else {}
        return FrameLoader(self, batch_size, shuffle, seed, workers=workers, **kw)


def training_targets(frame: KittiFrame, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The frame's boxes of ``classes`` and their class indices."""
    if frame.labels is None:
        return np.zeros((0, 7), np.float32), np.zeros(0, np.int64)
    keep = [i for i, n in enumerate(frame.labels.names) if n in classes]
    return (frame.labels.boxes[keep].astype(np.float32),
            np.array([list(classes).index(frame.labels.names[i]) for i in keep], np.int64))


def collate(frames: Sequence[KittiFrame], classes: Sequence[str]) -> tuple[Tensor, Tensor, list[Tensor], list[Tensor]]:
    n = max([len(f.points) for f in frames] + [1])
    points = torch.zeros(len(frames), n, 4)
    for i, f in enumerate(frames):
        points[i, :len(f.points)] = torch.from_numpy(f.points[:, :4])
    counts = torch.tensor([len(f.points) for f in frames])
    targets = [training_targets(f, classes) for f in frames]
    return points, counts, [torch.from_numpy(b) for b, _ in targets], [torch.from_numpy(c) for _, c in targets]


class FrameLoader(StreamLoader):
    """Batches of frames in StreamLoader's epoch order; a folder's frames read by ``workers`` threads ahead."""

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, list[Tensor], list[Tensor]]]:
        order = self.indices().tolist()
        chunks = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        chunks = chunks[:len(self)]
        d = self.data
        if d.frames is not None or self.workers <= 0:
            for c in chunks:
                yield collate([d.frame(i) for i in c], d.classes)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.workers) as pool:
            for c in chunks:
                yield collate(list(pool.map(d.frame, c)), d.classes)


class LidarSplits(DataSplits):
    def summary(self) -> str:
        parts = [f"{k} {len(v):,}" for k, v in (("train", self.train), ("val", self.val), ("test", self.test)) if v]
        return f"{self.name}: {', '.join(parts)} point-cloud frames, {self.num_classes} classes"


def simulated(n: int, seed: int, progress: bool = False) -> LidarFrames:
    """``n`` simulated frames of scene set ``seed``."""
    from dcvkit.data.lidar_scenes import lidar_frame

    it: Any = range(n)
    if progress:
        from dcvkit.progress import track

        it = track(it, description=f"simulating {n} LiDAR frames")
    return LidarFrames(list(CLASSES), [lidar_frame(i, seed) for i in it], name="simulated LiDAR scenes")


def from_folder(path: str | os.PathLike) -> LidarFrames:
    folder = KittiFolder.open(path)
    if not folder.labelled:
        raise DataError(f"{folder.root}: no label_2/ folder; training and evaluation need the labels")
    return LidarFrames(list(CLASSES), None, folder, list(range(len(folder))), name=str(path))


def lidar_splits(data: str, test_data: str | None, val_split: float, seed: int, frames: int, test_frames: int,
                 scene_seed: int, limit: int | None = None, progress: bool = False) -> LidarSplits:
    """``data``: ``scenes`` (simulated: ``frames`` from scene set ``scene_seed``, ``test_frames`` from
    ``scene_seed + 1``) or a KITTI-layout folder (``test_data``: another); the validation frames are a seeded
    ``val_split`` of the training ones."""
    if data == "scenes":
        train = simulated(frames, scene_seed, progress)
        test = simulated(test_frames, scene_seed + 1, progress) if test_frames and test_data is None else None
    else:
        if not Path(data).exists():
            raise DataError(f"--data {data}: no such folder; give a KITTI-layout folder or 'scenes'")
        train, test = from_folder(data), None
    if test_data is not None:
        test = from_folder(test_data)
    order = epoch_permutation(len(train), seed, 0).tolist()
    if limit:
        order = order[:limit]
    n_val = int(round(len(order) * val_split)) if len(order) > 1 else 0
    val = train.subset(order[:n_val]) if n_val else None
    return LidarSplits(train.name, list(CLASSES), train.subset(order[n_val:]), val, test)


__all__ = ["LidarFrames", "FrameLoader", "LidarSplits", "lidar_splits", "simulated", "from_folder", "collate",
           "training_targets"]
