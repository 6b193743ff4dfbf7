"""The shapes data takes between the readers and the engine.

A dataset is either held in memory (:class:`ImageTensors`: one uint8 tensor of all images) and batched by
indexing that tensor with a permutation — no per-sample Python work, no worker processes — or streamed
from files (:class:`dcvkit.data.folders.ImageFiles`) through a DataLoader with workers. Both loaders
yield the same batches: ``(images uint8 (B, C, H, W), labels int64 (B,))``, reshuffled per epoch from
``seed`` and the epoch number alone, so a resumed run sees exactly the order it would have seen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

import torch
from torch import Tensor


class InMemoryImages:
    """What every in-memory dataset derives from its ``images`` tensor ((N, C, H, W) or clips
    (N, T, C, H, W)): length, channels, image size and per-channel statistics."""

    images: Tensor

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return self.images.shape[-3]

    @property
    def img_size(self) -> tuple[int, int]:
        return (self.images.shape[-2], self.images.shape[-1])

    def mean_std(self, max_images: int = 10_000) -> tuple[list[float], list[float]]:
        """Per-channel mean and std in [0, 1] units, from up to ``max_images`` images."""
        x = self.images[:max_images].float().div_(255)
        x = x.flatten(0, 1) if x.ndim == 5 else x
        return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()


@dataclass
class ImageTensors(InMemoryImages):
    """Labelled images (or clips of frames) held in memory.

    Shape:
        images: (N, C, H, W) uint8, or (N, T, C, H, W) for clips; labels: (N,) int64 in ``[0, len(classes))``.
    """

    images: Tensor
    labels: Tensor
    classes: list[str]

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim in (4, 5), \
            "images must be (N, C, H, W) or (N, T, C, H, W) uint8"
        assert len(self.images) == len(self.labels), "one label per image"

    @property
    def frames(self) -> int | None:
        """Frames per clip, or None for still images."""
        return self.images.shape[1] if self.images.ndim == 5 else None

    def subset(self, index: Tensor) -> "ImageTensors":
        return ImageTensors(self.images[index], self.labels[index], self.classes)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0,
               shard: "Shard | None" = None) -> "TensorLoader":
        return TensorLoader(self, batch_size, shuffle=shuffle, seed=seed, shard=shard or Shard())

class Batches(Protocol):
    """What the engine iterates: ``len()`` batches of ``(images, labels)``, reshuffled by ``set_epoch``.
    Loaders built with a :class:`Shard` also say which indices the current epoch reads (``indices()``)."""

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]: ...
    def __len__(self) -> int: ...
    def set_epoch(self, epoch: int) -> None: ...


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The data order of one epoch: a function of (seed, epoch) only, so resume reproduces it."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


@dataclass(frozen=True)
class Shard:
    """The part of every epoch one of ``world`` training processes reads (distributed training)."""

    rank: int = 0
    world: int = 1


def epoch_indices(n: int, *, shuffle: bool, seed: int, epoch: int, shard: Shard = Shard()) -> Tensor:
    """The indices one process reads in ``epoch``, in order.

    Every rank draws the same permutation (from seed and epoch) and takes every ``world``-th index from
    position ``rank``; the last ``n % world`` indices of the permutation (a different few each epoch) are left
    out so every rank gets as many. The ranks' parts are disjoint, and with a per-rank batch of ``B / world``
    the union of the ranks' k-th batches is the k-th batch of ``B`` that a single process reads
    (``torch.utils.data.DistributedSampler`` pads with repeats instead, and interleaves differently)."""
    order = epoch_permutation(n, seed, epoch) if shuffle else torch.arange(n)
    if shard.world == 1:
        return order
    return order[shard.rank: n - n % shard.world: shard.world]


def batches_per_epoch(n: int, batch_size: int, shard: Shard = Shard(), drop_last: bool = False) -> int:
    """How many batches one process reads from ``n`` items per epoch (its ``n // world`` indices)."""
    n //= shard.world
    return n // batch_size if drop_last else -(-n // batch_size)


@dataclass
class TensorLoader:
    """Batches an :class:`ImageTensors` by tensor indexing; the fastest path for data that fits in memory."""

    data: ImageTensors
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    drop_last: bool = False
    shard: Shard = Shard()
    epoch: int = field(default=0, init=False)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> Tensor:
        """The indices this loader reads in the current epoch, in order."""
        return epoch_indices(len(self.data), shuffle=self.shuffle, seed=self.seed, epoch=self.epoch, shard=self.shard)

    def __len__(self) -> int:
        return batches_per_epoch(len(self.data), self.batch_size, self.shard, self.drop_last)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if not self.shuffle and self.shard.world == 1:  # slices: views, no copy
            n = len(self.data)
            for b in range(len(self)):
                sl = slice(b * self.batch_size, min(n, (b + 1) * self.batch_size))
                yield self.data.images[sl], self.data.labels[sl]
            return
        order = self.indices()
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.data.images[idx], self.data.labels[idx]


def _read_batch(data: Any, ids: list[int]) -> tuple[Tensor, ...]:
    import numpy as np

    items = [data.read(i) for i in ids]
    return tuple(torch.from_numpy(np.stack(parts)) for parts in zip(*items))


def stream_batches(data: Any, order: Tensor, batch_size: int, workers: int) -> Iterator[tuple[Tensor, ...]]:
    """Batches of ``data.read(i)`` for the indices ``order``, stacked per field, decoded ahead of use by
    ``workers`` threads (0: here, when asked for). Threads, not DataLoader processes: decoding and resizing
    (PIL) release the GIL, and measured on 2 cores (yolo_n at 480x640, batch 8) training from two forked
    DataLoader workers ran at 6.2 images/s, from two threads at 10.0, from memory at 10.1. A bad file raises
    its DataError here, in the training process."""
    from concurrent.futures import ThreadPoolExecutor

    ids = order.tolist()
    chunks = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]
    if workers <= 0:
        for c in chunks:
            yield _read_batch(data, c)
        return
    with ThreadPoolExecutor(workers) as pool:
        ahead = [pool.submit(_read_batch, data, c) for c in chunks[:workers + 1]]
        for k in range(len(chunks)):
            batch = ahead[k].result()
            if k + workers + 1 < len(chunks):
                ahead.append(pool.submit(_read_batch, data, chunks[k + workers + 1]))
            ahead[k] = None  # type: ignore[call-overload]  (the batch is the caller's now)
            yield batch


def sampled_mean_std(data: Any, max_images: int = 200) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] of a file-backed dataset (``read(i)[0]``: its image), from up to
    ``max_images`` images spread evenly over it."""
    import numpy as np

    idx = torch.linspace(0, len(data) - 1, min(len(data), max_images)).round().long().unique().tolist()
    x = torch.from_numpy(np.stack([data.read(i)[0] for i in idx])).float().div_(255)
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()


@dataclass
class StreamLoader:
    """Batches of a file-backed dataset (anything with ``len()`` and ``read(i)``) in the same order as
    :class:`TensorLoader` would give them from memory."""

    data: Any
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    shard: Shard = Shard()
    workers: int = 2
    epoch: int = field(default=0, init=False)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> Tensor:
        return epoch_indices(len(self.data), shuffle=self.shuffle, seed=self.seed, epoch=self.epoch, shard=self.shard)

    def __len__(self) -> int:
        return batches_per_epoch(len(self.data), self.batch_size, self.shard)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        yield from stream_batches(self.data, self.indices(), self.batch_size, self.workers)


class PerImageLoader(StreamLoader):
    """Batches of an in-memory dataset whose images carry per-image lists (boxes, keypoints, relations...):
    ``(images[ids], [field[j] for j in ids] for each of ``fields``)``, by tensor indexing, in StreamLoader's
    epoch order. Subclasses name their ``fields``."""

    fields: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        d = self.data
        order = self.indices()
        for b in range(len(self)):
            ids = order[b * self.batch_size:(b + 1) * self.batch_size]
            i = ids.tolist()
            yield (d.images[ids], *([getattr(d, f)[j] for j in i] for f in self.fields))


@dataclass
class DataSplits:
    """Train / validation / test parts of one dataset, with what a model needs to know about it."""

    name: str
    classes: list[str]
    train: "ImageTensors | ImageFilesLike"
    val: "ImageTensors | ImageFilesLike | None" = None
    test: "ImageTensors | ImageFilesLike | None" = None
    test_split: str = "test"  # what ``test`` is: "val" when data without a test split is scored on validation

    def val_as_test(self, where: str) -> "DataSplits":
        """These splits scored on the validation split when there is no test split (with a warning naming
        ``where``: the figures lean optimistic, as the same split chose best.pt); as they are otherwise."""
        import dataclasses
        import warnings

        if self.test is not None or self.val is None:
            return self
        warnings.warn(f"{where}: no test split, so the test figures are measured on the validation split "
                      f"({len(self.val):,} images), which also chose best.pt: they lean optimistic; add a test "
                      "split (or --test-data) for an unbiased figure", stacklevel=2)
        return dataclasses.replace(self, test=self.val, test_split="val")

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
        parts = [f"{k} {len(v):,}" for k, v in (("train", self.train), ("val", self.val)) if v]
        if self.test:
            parts.append(f"test {len(self.test):,}" if self.test_split == "test" else "test = val")
        h, w = self.img_size
        frames = getattr(self.train, "frames", None)
        kind = f"clips of {frames}x" if frames else "images, "
        return f"{self.name}: {', '.join(parts)} {kind}{self.channels}x{h}x{w}, {self.num_classes} classes"


class ImageFilesLike(Protocol):
    classes: list[str]

    def __len__(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def img_size(self) -> tuple[int, int]: ...
    def subset(self, index: Tensor) -> "ImageFilesLike": ...
    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0,
               shard: Shard | None = None) -> Batches: ...
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


def subset_limit(data: "ImageTensors | ImageFilesLike | Any", limit: int | None, seed: int) -> Any:
    """``--limit``: a seeded random subset of ``limit`` items of ``data`` (in their order), or ``data`` itself
    when ``limit`` is None, 0 or at least its size. One function for every task's data."""
    if not limit or limit >= len(data):
        return data
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + 7))
    return data.subset(perm[:limit].sort().values)


def parse_classes(spec: str, classes: list[str]) -> list[int]:
    """Class indices from ``"0-4"``, ``"5,7,9"`` or class names (``"Sandal,Bag"``), in the given order."""
    from dcvkit.errors import DataError

    out: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part in classes:
            out.append(classes.index(part))
        elif part.isdigit():
            out.append(int(part))
        elif "-" in part and all(s.strip().isdigit() for s in part.split("-", 1)):
            lo, hi = (int(s) for s in part.split("-", 1))
            out.extend(range(lo, hi + 1))
        else:
            raise DataError(f"--classes: '{part}' is neither a class index, a range like 0-4, nor one of "
                            f"the classes ({', '.join(classes)})")
    bad = [i for i in out if not 0 <= i < len(classes)]
    if bad or not out or len(set(out)) != len(out):
        raise DataError(f"--classes '{spec}': give distinct indices in 0-{len(classes) - 1} (got {out})")
    return out


def select_classes(data: "ImageTensors | ImageFilesLike", keep: list[int]) -> "ImageTensors | ImageFilesLike":
    """The images of the classes ``keep``, relabelled 0..len(keep)-1 in that order."""
    mapping = torch.full((len(data.classes),), -1, dtype=torch.long)
    mapping[torch.tensor(keep)] = torch.arange(len(keep))
    labels = torch.as_tensor(data.labels)
    index = (mapping[labels] >= 0).nonzero().flatten()
    sub = data.subset(index)
    new = mapping[labels[index]]
    names = [data.classes[i] for i in keep]
    if isinstance(sub, ImageTensors):
        return ImageTensors(sub.images, new, names)
    return dataclasses.replace(sub, labels=new.tolist(), classes=names)


def per_class_subset(data: "ImageTensors | ImageFilesLike", n: int, seed: int) -> "ImageTensors | ImageFilesLike":
    """A seeded random subset of at most ``n`` images of each class."""
    labels = torch.as_tensor(data.labels)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed + 11))
    keep = torch.cat([perm[labels[perm] == c][:n] for c in range(len(data.classes))])
    return data.subset(keep.sort().values)
