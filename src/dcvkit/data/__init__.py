"""Datasets: named IDX datasets (``fashion-mnist``, ``mnist``), generated clips (``moving-fashion-mnist``)
and image folders, split and batched.

>>> from dcvkit.data import load_dataset
>>> splits = load_dataset("fashion-mnist", val_split=0.1)   # doctest: +SKIP
>>> splits.summary()                                         # doctest: +SKIP
'fashion-mnist: train 54,000, val 6,000, test 10,000 images, 1x28x28, 10 classes'
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from dcvkit.data import named
from dcvkit.data.core import (DataSplits, ImageTensors, TensorLoader, parse_classes, per_class_subset,
                              select_classes, split_train_val)
from dcvkit.data.folders import ImageFiles, load_folder, split_folders
from dcvkit.errors import DataError

__all__ = ["load_dataset", "DataSplits", "ImageTensors", "ImageFiles", "TensorLoader", "list_datasets"]


GENERATED = ("moving-fashion-mnist",)


def list_datasets() -> list[str]:
    return sorted([*named.NAMED, *GENERATED])


def _limit(data, limit: int | None, seed: int):
    if not limit or limit >= len(data):
        return data
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + 7))
    return data.subset(perm[:limit].sort().values)


def load_dataset(
    spec: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    val_split: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
    img_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    skip_bad: bool = False,
    max_memory_mb: float = 2048,
    classes: str | None = None,
    per_class: int | None = None,
) -> DataSplits:
    """Load a named dataset or an image folder and split it.

    Args:
        spec: ``fashion-mnist``, ``mnist``, ``moving-fashion-mnist`` (clips, see
            :mod:`dcvkit.data.sequences`), or a folder path (class subfolders, class-in-file-name, or
            ``train/``, ``val/``, ``test/`` subfolders of either).
        val_split: fraction of the training images held out for validation (a seeded random split),
            unless the folder has its own ``val/``.
        limit: keep a seeded random subset of this many training images (for quick runs).
        img_size, channels: resize / convert folder images (default: the first image's).
        classes: keep only these classes (``"0-4"``, ``"5,7"``, names), relabelled in that order.
        per_class: keep a seeded random subset of this many training images per class (before the
            validation split), e.g. 50 for a few-shot transfer-learning run.
    """
    if not 0 <= val_split < 1:
        raise DataError(f"--val-split must be in [0, 1), got {val_split}")
    size = (img_size, img_size) if isinstance(img_size, int) else (tuple(img_size) if img_size else None)

    def prepare(train, *others):
        """Class selection on every split, then the per-class and total limits on ``train`` (the
        validation split, when it is drawn from ``train``, comes after)."""
        if classes:
            keep = parse_classes(classes, list(train.classes))
            train, *others = (select_classes(d, keep) if d is not None else None for d in (train, *others))
        if per_class:
            train = per_class_subset(train, per_class, seed)
        return (_limit(train, limit, seed), *others)

    name = named.canonical_name(str(spec))
    generated = str(spec).lower() in GENERATED
    if (name is not None or generated) and not Path(spec).is_dir():
        train, test = named.load(name or "fashion-mnist", data_dir, download_ok=download)
        if generated:
            from dcvkit.data.sequences import moving_fashion_mnist

            name = str(spec).lower()
            train, test = moving_fashion_mnist(train, test)
        if (size and size != train.img_size) or (channels and channels != train.channels):
            raise DataError(f"{name} images are {train.channels}x{train.img_size[0]}x{train.img_size[1]}; "
                            "--img-size/--channels do not apply")
        train, test = prepare(train, test)
        train, val = split_train_val(train, val_split, seed)
        return DataSplits(name, list(train.classes), train, val, test)

    root = Path(spec)
    if not root.exists():
        known = ", ".join(list_datasets())
        raise DataError(f"{spec}: no such folder and not a named dataset ({known})")
    if not root.is_dir():
        raise DataError(f"{spec}: expected a folder of images (or a named dataset), got a file")
    kw = dict(channels=channels, img_size=size, skip_bad=skip_bad, max_memory_mb=max_memory_mb)
    splits = split_folders(root)
    if splits:
        train = load_folder(splits["train"], **kw)
        kw.update(classes=train.classes, channels=train.channels, img_size=train.img_size)
        val = load_folder(splits["val"], **kw) if "val" in splits else None
        test = load_folder(splits["test"], **kw) if "test" in splits else None
        train, val, test = prepare(train, val, test)
        if val is None:
            train, val = split_train_val(train, val_split, seed)
    else:
        train, = prepare(load_folder(root, **kw))
        train, val = split_train_val(train, val_split, seed)
        test = None
    return DataSplits(root.name, list(train.classes), train, val, test)
