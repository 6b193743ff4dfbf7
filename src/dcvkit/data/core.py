"""The shapes data takes between the readers and the engine.

A dataset is either held in memory (:class:`ImageTensors`: one uint8 tensor of all images) and batched by
indexing that tensor with a permutation — no per-sample Python work, no worker processes — or streamed
from files (:class:`dcvkit.data.folders.ImageFiles`) through a DataLoader with workers. Both loaders
yield the same batches: ``(images uint8 (B, C, H, W), labels int64 (B,))``, reshuffled per epoch from
``seed`` and the epoch number alone, so a resumed run sees exactly the order it would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol

import torch
from torch import Tensor


@dataclass
class ImageTensors:
    """Labelled images held in memory.

    Shape:
        images: (N, C, H, W) uint8; labels: (N,) int64 in ``[0, len(classes))``.
    """

    images: Tensor
    labels: Tensor
    classes: list[str]

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, "images must be (N, C, H, W) uint8"
        assert len(self.images) == len(self.labels), "one label per image"

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def img_size(self) -> tuple[int, int]:
        return (self.images.shape[2], self.images.shape[3])

    def subset(self, index: Tensor) -> "ImageTensors":
        return ImageTensors(self.images[index], self.labels[index], self.classes)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0) -> "TensorLoader":
        return TensorLoader(self, batch_size, shuffle=shuffle, seed=seed)

    def mean_std(self, max_images: int = 10_000) -> tuple[list[float], list[float]]:
        """Per-channel mean and std in [0, 1] units, from up to ``max_images`` images."""
        x = self.images[:max_images].float().div_(255)
        return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()


class Batches(Protocol):
    """What the engine iterates: ``len()`` batches of ``(images, labels)``, reshuffled by ``set_epoch``."""

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]: ...
    def __len__(self) -> int: ...
    def set_epoch(self, epoch: int) -> None: ...


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The data order of one epoch: a function of (seed, epoch) only, so resume reproduces it."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


@dataclass
class TensorLoader:
    """Batches an :class:`ImageTensors` by tensor indexing; the fastest path for data that fits in memory."""

    data: ImageTensors
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    drop_last: bool = False
    epoch: int = field(default=0, init=False)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.data)
        order = epoch_permutation(n, self.seed, self.epoch) if self.shuffle else None
        for b in range(len(self)):
            sl = slice(b * self.batch_size, min(n, (b + 1) * self.batch_size))
            if order is None:
                yield self.data.images[sl], self.data.labels[sl]
            else:
                idx = order[sl]
                yield self.data.images[idx], self.data.labels[idx]


@dataclass
class DataSplits:
    """Train / validation / test parts of one dataset, with what a model needs to know about it."""

    name: str
    classes: list[str]
    train: "ImageTensors | ImageFilesLike"
    val: "ImageTensors | ImageFilesLike | None" = None
    test: "ImageTensors | ImageFilesLike | None" = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return self.train.channels

    @property
    def img_size(self) -> tuple[int, int]:
        return self.train.img_size

    def summary(self) -> str:
        parts = [f"{k} {len(v):,}" for k, v in (("train", self.train), ("val", self.val), ("test", self.test)) if v]
        h, w = self.img_size
        return f"{self.name}: {', '.join(parts)} images, {self.channels}x{h}x{w}, {self.num_classes} classes"


class ImageFilesLike(Protocol):
    classes: list[str]

    def __len__(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def img_size(self) -> tuple[int, int]: ...
    def subset(self, index: Tensor) -> "ImageFilesLike": ...
    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0) -> Batches: ...
    def mean_std(self, max_images: int = 10_000) -> tuple[list[float], list[float]]: ...


def split_train_val(
    data: "ImageTensors | ImageFilesLike", val_split: float, seed: int
) -> tuple["ImageTensors | ImageFilesLike", "ImageTensors | ImageFilesLike | None"]:
    """Hold out a seeded random ``val_split`` fraction of ``data`` for validation."""
    if val_split <= 0:
        return data, None
    n = len(data)
    n_val = max(1, int(round(n * val_split)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return data.subset(perm[n_val:].sort().values), data.subset(perm[:n_val].sort().values)
