"""Image folders: ``root/<class>/*.png`` (ImageFolder style) or ``root/cat.123.jpg`` (class in the name).

A root with ``train/`` (and optionally ``val/`` or ``valid/``, ``test/``) subfolders gives those splits.
Images are converted to 1 or 3 channels and resized to one size. A folder that fits in
``max_memory_mb`` is decoded once (threads; PIL releases the GIL) into an :class:`ImageTensors`;
a larger one is streamed by :class:`ImageFiles` through a DataLoader with worker processes.
A file that cannot be decoded is an error naming it, or, with ``skip_bad``, skipped with a warning.
"""

from __future__ import annotations

import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from dcvkit.data.core import ImageTensors, Shard, batches_per_epoch, epoch_indices
from dcvkit.errors import DataError

# What reading an untrusted image file can raise: not an image, truncated, corrupt, or a decompression bomb
# (PIL refuses images over ~179 megapixels, about 0.5 GB decoded).
UNREADABLE_IMAGE = (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError)

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_NAME_CLASS = re.compile(r"^(?P<cls>[^\W\d_][\w\- ]*?)[._\- ]?\d+$")
SPLIT_DIRS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def list_images(root: Path, classes: Sequence[str] | None = None) -> tuple[list[Path], list[int], list[str]]:
    """Files and labels of one split folder; ``classes`` fixes the class order (from the train split)."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    training = classes is None  # the split that defines the classes: each needs examples
    if subdirs:  # ImageFolder style
        found = [d.name for d in subdirs]
        classes = list(classes) if classes is not None else found
        paths, labels = [], []
        for d in subdirs:
            if d.name not in classes:
                raise DataError(f"{d}: class folder '{d.name}' is not among the training classes {classes}")
            found_here = _images_in(d)
            if not found_here and training:
                raise DataError(f"{d}: class folder '{d.name}' holds no images (extensions: "
                                f"{', '.join(sorted(IMAGE_EXTENSIONS))}); add some or remove the folder")
            for p in found_here:
                paths.append(p)
                labels.append(classes.index(d.name))
    else:  # class in the file name: cat.123.jpg, dog_45.png
        files = _images_in(root)
        names = []
        for p in files:
            m = _NAME_CLASS.match(p.stem)
            if not m:
                raise DataError(
                    f"{p}: cannot read a class from the file name; name files like 'cat.123.jpg' "
                    "or put them in one subfolder per class"
                )
            names.append(m.group("cls").lower())
        classes = list(classes) if classes is not None else sorted(set(names))
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise DataError(f"{root}: classes {unknown} are not among the training classes {classes}")
        paths, labels = files, [classes.index(n) for n in names]
    if not paths:
        raise DataError(f"{root}: no images found (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return paths, labels, list(classes)


def _converted(im: Image.Image, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    im = im.convert("L" if channels == 1 else "RGB")
    if size is not None and im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    arr = np.array(im, dtype=np.uint8)  # a writable copy (PIL's buffer is read-only)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def decode(path: Path, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """One image file as a (C, H, W) uint8 array; raises DataError naming the file."""
    try:
        with Image.open(path) as im:
            return _converted(im, channels, size)
    except UNREADABLE_IMAGE as e:
        raise DataError(f"{path}: unreadable image ({e}); fix or remove it, or pass --skip-bad") from None


#: the most pixels :func:`decode_upload` decodes (PIL's own bomb limit is ~179 MP, 0.5 GB decoded)
MAX_UPLOAD_PIXELS = 40_000_000


def decode_upload(data: bytes, channels: int, size: tuple[int, int] | None, name: str = "upload",
                  max_pixels: int = MAX_UPLOAD_PIXELS) -> np.ndarray:
    """An image sent over the network (bytes) as :func:`decode` reads a file, the same pixels for the same
    bytes; its dimensions are checked against ``max_pixels`` from the header before anything is decoded, and
    a truncated file is an error (PIL refuses one unless told otherwise). Raises DataError naming ``name``."""
    import io

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise DataError(f"{name}: {w}x{h} is {w * h / 1e6:.0f} megapixels, over the limit of "
                                f"{max_pixels / 1e6:.0f}; send a smaller image")
            return _converted(im, channels, size)
    except UnidentifiedImageError:
        raise DataError(f"{name}: not an image file (no image format recognised in its bytes); send a PNG, JPEG, "
                        "BMP, GIF, WebP or TIFF file") from None
    except UNREADABLE_IMAGE as e:
        raise DataError(f"{name}: unreadable image ({e}); send the whole file, or another one") from None


def probe(path: Path) -> tuple[int, tuple[int, int]]:
    """(channels, (H, W)) of the first image: 1 for grayscale files, else 3."""
    try:
        with Image.open(path) as im:
            return (1 if im.mode in ("1", "L", "I", "I;16", "F", "LA") else 3), (im.size[1], im.size[0])
    except UNREADABLE_IMAGE as e:
        raise DataError(f"{path}: unreadable image ({e}); fix or remove it, or pass --skip-bad") from None


def _warn_skip(err: DataError | str) -> None:
    warnings.warn("skipping " + str(err).split("; fix or remove it")[0], stacklevel=3)


def decode_all(paths: Sequence[Path], labels: Sequence[int], channels: int, size: tuple[int, int],
               skip_bad: bool, workers: int = 4) -> tuple[Tensor, Tensor]:
    """Decode every file into one (N, C, H, W) uint8 tensor, in threads, keeping the file order."""
    def one(p: Path) -> np.ndarray | DataError:
        try:
            return decode(p, channels, size)
        except DataError as e:
            return e

    with ThreadPoolExecutor(max(1, workers)) as pool:
        arrays = list(pool.map(one, paths))
    good_imgs, good_labels = [], []
    for p, a, y in zip(paths, arrays, labels):
        if isinstance(a, DataError):
            if not skip_bad:
                raise a
            _warn_skip(a)
            continue
        good_imgs.append(a)
        good_labels.append(y)
    if not good_imgs:
        raise DataError(f"{paths[0].parent}: no readable images")
    return torch.from_numpy(np.stack(good_imgs)), torch.tensor(good_labels, dtype=torch.int64)


class _FileDataset(Dataset):
    """Per-sample decoding for streaming. Errors travel back as values so that the main process raises
    one clean DataError (a worker's exception would arrive wrapped in a traceback)."""

    def __init__(self, files: "ImageFiles"):
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[np.ndarray | None, int, str | None]:
        try:
            return decode(self.files.paths[i], self.files.channels, self.files.img_size), self.files.labels[i], None
        except DataError as e:
            return None, self.files.labels[i], str(e)


def _collate(items: list[tuple[np.ndarray | None, int, str | None]]) -> tuple[Tensor, Tensor, list[str]]:
    good = [(a, y) for a, y, _ in items if a is not None]
    errors = [e for _, _, e in items if e is not None]
    if not good:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64), errors
    return torch.from_numpy(np.stack([a for a, _ in good])), torch.tensor([y for _, y in good]), errors


@dataclass
class ImageFiles:
    """Labelled image files decoded on the fly (for folders too large to hold in memory)."""

    paths: list[Path]
    labels: list[int]
    classes: list[str]
    channels: int
    img_size: tuple[int, int]
    skip_bad: bool = False

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index: Tensor) -> "ImageFiles":
        idx = index.tolist()
        return ImageFiles([self.paths[i] for i in idx], [self.labels[i] for i in idx], self.classes,
                          self.channels, self.img_size, self.skip_bad)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 2,
               shard: Shard | None = None) -> "FileLoader":
        return FileLoader(self, batch_size, shuffle=shuffle, seed=seed, workers=workers, shard=shard or Shard())

    def mean_std(self, max_images: int = 1000) -> tuple[list[float], list[float]]:
        idx = torch.linspace(0, len(self) - 1, min(max_images, len(self))).long()
        imgs, _ = decode_all([self.paths[i] for i in idx], [0] * len(idx), self.channels, self.img_size, True)
        x = imgs.float().div_(255)
        return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()


@dataclass
class FileLoader:
    files: ImageFiles
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    workers: int = 2
    shard: Shard = Shard()
    epoch: int = field(default=0, init=False)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> Tensor:
        return epoch_indices(len(self.files), shuffle=self.shuffle, seed=self.seed, epoch=self.epoch,
                             shard=self.shard)

    def __len__(self) -> int:
        return batches_per_epoch(len(self.files), self.batch_size, self.shard)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.indices().tolist()
        dl = DataLoader(_FileDataset(self.files), batch_size=self.batch_size, sampler=order,
                        num_workers=self.workers, collate_fn=_collate, persistent_workers=False)
        for images, labels, errors in dl:
            for e in errors:
                if not self.files.skip_bad:
                    raise DataError(e)
                _warn_skip(e)
            if len(labels):
                yield images, labels


def load_folder(root: Path, *, classes: Sequence[str] | None = None, channels: int | None = None,
                img_size: tuple[int, int] | None = None, skip_bad: bool = False,
                max_memory_mb: float = 2048, workers: int = 4) -> ImageTensors | ImageFiles:
    """One split folder, in memory when it fits in ``max_memory_mb`` else streamed."""
    paths, labels, classes = list_images(root, classes)
    if channels is None or img_size is None:
        first = next((probe_or_none(p) for p in paths if probe_or_none(p)), None)
        if first is None:
            raise DataError(f"{root}: no readable images")
        channels = channels or first[0]
        img_size = img_size or first[1]
    nbytes = len(paths) * channels * img_size[0] * img_size[1]
    if nbytes <= max_memory_mb * 2**20:
        images, labels_t = decode_all(paths, labels, channels, img_size, skip_bad, workers)
        return ImageTensors(images, labels_t, list(classes))
    return ImageFiles(paths, labels, list(classes), channels, img_size, skip_bad)


def probe_or_none(path: Path) -> tuple[int, tuple[int, int]] | None:
    try:
        return probe(path)
    except DataError:
        return None


def split_folders(root: Path) -> dict[str, Path]:
    """``{'train': ..., 'val': ..., 'test': ...}`` for a root with split subfolders, else ``{}``."""
    found = {}
    for split, names in SPLIT_DIRS.items():
        for n in names:
            if (root / n).is_dir():
                found[split] = root / n
                break
    return found if "train" in found else {}
