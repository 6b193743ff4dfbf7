"""Segmentation data: image + mask folder pairs, and the in-memory tensors the segmentation task trains on.

Layout (one split, or ``train/``, ``val/``, ``test/`` subfolders each laid out so)::

    root/images/0001.png     any image type
    root/masks/0001.png      same stem, same size; PNG of class ids (mode L or P), or RGB colours
    root/classes.yaml        optional: a list of names (index = id), an ``id: name`` mapping, or
                             ``{names: [...], palette: [[r, g, b], ...]}`` for RGB colour-coded masks

Without ``classes.yaml`` the classes are ``0 .. max id`` of the masks. Id 255 (colour (224, 224, 192) in RGB masks) is 'void' (VOC's border):
ignored by losses and metrics. A mask that is missing, of another size than its image, or that holds an
id (or colour) outside the classes is an error naming the file.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from dcvkit.config import load_yaml
from dcvkit.data.annotations import palette, write_png
from dcvkit.data.core import DataSplits, InMemoryImages, split_train_val, subset_limit
from dcvkit.data.folders import IMAGE_EXTENSIONS, SPLIT_DIRS, UNREADABLE_IMAGE, probe
from dcvkit.data.letterbox import default_size, letterbox_image, letterbox_mask
from dcvkit.errors import DataError

IGNORE = 255
VOID_RGB = (224, 224, 192)  # Pascal VOC's colour for id 255 ('void') in colour-coded masks


@dataclass
class MaskTensors(InMemoryImages):
    """Images with one class id per pixel, held in memory.

    Shape:
        images: (N, C, H, W) uint8; masks: (N, H, W) uint8 class ids (``IGNORE`` = 255 for void pixels).
    """

    images: Tensor
    masks: Tensor
    classes: list[str]

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, "images must be (N, C, H, W) uint8"
        assert self.masks.shape == (self.images.shape[0], *self.images.shape[-2:]), "one (H, W) mask per image"

    @property
    def labels(self) -> Tensor:  # what split_train_val and the loaders index alongside the images
        return self.masks

    def subset(self, index: Tensor) -> "MaskTensors":
        return MaskTensors(self.images[index], self.masks[index], self.classes)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0, shard=None):
        from dcvkit.data.core import Shard, TensorLoader

        return TensorLoader(self, batch_size, shuffle=shuffle, seed=seed,  # type: ignore[arg-type]
                            shard=shard or Shard())

    def mean_std(self, max_images: int = 2000) -> tuple[list[float], list[float]]:
        return super().mean_std(max_images)

    def class_pixels(self) -> Tensor:
        """Pixels per class id (void left out)."""
        m = self.masks.flatten().long()
        return torch.bincount(m[m != IGNORE], minlength=len(self.classes))[: len(self.classes)]


# --- classes.yaml --------------------------------------------------------------------------------------


def read_classes(path: Path) -> tuple[list[str], list[tuple[int, int, int]] | None]:
    """Names and (for RGB masks) colours from ``classes.yaml``."""
    spec = load_yaml(path, mapping=False) if path.suffix in (".yaml", ".yml") else None
    colours = None
    if isinstance(spec, dict) and "names" in spec:
        names, colours = spec["names"], spec.get("palette")
    else:
        names = spec
    if isinstance(names, dict):
        try:
            ids = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            raise DataError(f"{path}: class ids must be integers 0..K-1, got {list(names)[:5]}") from None
        if sorted(ids) != list(range(len(ids))):
            raise DataError(f"{path}: class ids must be 0..K-1 without gaps, got {sorted(ids)}")
        names = [ids[k] for k in range(len(ids))]
    if not isinstance(names, list) or not names or any(isinstance(n, (list, dict)) or n is None for n in names):
        raise DataError(f"{path}: expected a list of class names, an 'id: name' mapping, or names: + palette:")
    if colours is not None:
        try:
            if not isinstance(colours, list) or len(colours) != len(names) or any(len(c) != 3 for c in colours):
                raise TypeError
            colours = [tuple(int(v) for v in c) for c in colours]
        except (TypeError, ValueError):
            raise DataError(f"{path}: palette needs one [r, g, b] of integers per class ({len(names)})") from None
        if any(not 0 <= v <= 255 for c in colours for v in c):
            raise DataError(f"{path}: palette values must be 0..255")
    return [str(n) for n in names], colours


# --- reading -------------------------------------------------------------------------------------------


def _pairs(root: Path) -> list[tuple[Path, Path]]:
    img_dir, mask_dir = root / "images", root / "masks"
    if not img_dir.is_dir() or not mask_dir.is_dir():
        raise DataError(f"{root}: a segmentation folder needs images/ and masks/ subfolders (see dcv segment "
                        "train --help); write an example with `dcv data scenes --format masks`")
    images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise DataError(f"{img_dir}: no images found")
    masks = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
    pairs = []
    for p in images:
        if p.stem not in masks:
            raise DataError(f"{p}: no mask file {mask_dir}/{p.stem}.png; every image needs a mask of the same name")
        pairs.append((p, masks[p.stem]))
    return pairs


def _read_pair(img: Path, mask: Path, channels: int, size: tuple[int, int] | None,
               colours: list[tuple[int, int, int]] | None, n_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        with Image.open(img) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            isize = im.size
            if size is not None and im.size != (size[1], size[0]):
                a, _ = letterbox_image(im, size)
            else:
                a = np.array(im, dtype=np.uint8)
                a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        with Image.open(mask) as mk:
            if mk.size != isize:
                raise DataError(f"{mask}: mask is {mk.size[0]}x{mk.size[1]} but its image {img.name} is "
                                f"{isize[0]}x{isize[1]}; masks must have their image's size")
            if colours is not None:
                rgb = np.array(mk.convert("RGB"), dtype=np.uint8)
                m = np.full(rgb.shape[:2], IGNORE, dtype=np.uint8)
                for k, c in enumerate(colours):
                    m[(rgb == np.array(c, dtype=np.uint8)).all(-1)] = k
                unknown = rgb[(m == IGNORE) & ~(rgb == np.array(VOID_RGB, dtype=np.uint8)).all(-1)]
                if len(unknown):
                    raise DataError(f"{mask}: colour {tuple(unknown[0].tolist())} is not in the palette of "
                                    f"classes.yaml (nor the void colour {VOID_RGB})")
            else:
                if mk.mode not in ("L", "P", "1", "I", "I;16"):
                    raise DataError(f"{mask}: mode {mk.mode} mask; masks hold one class id per pixel (mode L or "
                                    "P), or give RGB colours in classes.yaml 'palette'")
                m = np.array(mk).astype(np.int64)
                if m.max(initial=0) > IGNORE or m.min(initial=0) < 0:
                    raise DataError(f"{mask}: class ids must be 0..254 (255 = void), found {m.max()}")
                m = m.astype(np.uint8)
            if size is not None and mk.size != (size[1], size[0]):
                m = letterbox_mask(m, size, IGNORE)
    except UNREADABLE_IMAGE as e:
        raise DataError(f"{getattr(e, 'filename', None) or img}: unreadable image ({e})") from None
    if n_classes is not None:
        bad = np.unique(m[(m >= n_classes) & (m != IGNORE)])
        if len(bad):
            raise DataError(f"{mask}: class id {int(bad[0])} is outside the {n_classes} classes (0..{n_classes - 1}"
                            "); fix the mask or add the class to classes.yaml")
    return a, m


@dataclass
class MaskFiles:
    """Image/mask pairs streamed from their files: each batch decoded (and letterboxed to ``size``, the masks'
    padding void) ahead of use by decoding threads, by the same function the in-memory path decodes with."""

    pairs: list[tuple[Path, Path]]
    classes: list[str]
    size: tuple[int, int]
    channels: int
    colours: list[tuple[int, int, int]] | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def img_size(self) -> tuple[int, int]:
        return self.size

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return _read_pair(*self.pairs[i], self.channels, self.size, self.colours, len(self.classes))

    def subset(self, index: Tensor) -> "MaskFiles":
        return MaskFiles([self.pairs[i] for i in index.tolist()], self.classes, self.size, self.channels, self.colours)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 2, shard=None):
        from dcvkit.data.core import Shard, StreamLoader

        return StreamLoader(self, batch_size, shuffle=shuffle, seed=seed, shard=shard or Shard(), workers=workers)

    def mean_std(self, max_images: int = 200) -> tuple[list[float], list[float]]:
        from dcvkit.data.core import sampled_mean_std

        return sampled_mean_std(self, max_images)


def hold_masks(files: MaskFiles | None, stream: bool) -> MaskTensors | MaskFiles | None:
    """``files`` decoded into memory (threads: PIL releases the GIL), or as they are when ``stream``."""
    if files is None or stream:
        return files
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        arrays = list(pool.map(files.read, range(len(files))))
    return MaskTensors(torch.from_numpy(np.stack([a for a, _ in arrays])),
                       torch.from_numpy(np.stack([m for _, m in arrays])), files.classes)


def load_mask_folder(root: str | os.PathLike, classes: list[str] | None = None, channels: int | None = None,
                     img_size: tuple[int, int] | None = None, stream: bool = False) -> MaskTensors | MaskFiles:
    """One split folder's image/mask pairs, letterboxed to ``img_size`` (default: the first image's size,
    scaled to a longest side of at most 640), in memory or (``stream``) streamed."""
    return hold_masks(mask_files(root, classes, channels, img_size), stream)  # type: ignore[return-value]


def mask_files(root: str | os.PathLike, classes: list[str] | None = None, channels: int | None = None,
               img_size: tuple[int, int] | None = None) -> MaskFiles:
    """One split folder's image/mask pairs as :class:`MaskFiles` (nothing decoded but the first image's
    header and, without ``classes.yaml``, the masks to find the class ids)."""
    root = Path(root)
    pairs = _pairs(root)
    colours = None
    for cand in (root / "classes.yaml", root.parent / "classes.yaml"):
        if cand.is_file():
            classes, colours = read_classes(cand)
            break
    if channels is None or img_size is None:  # the first image's, as for classification folders
        first_channels, (h, w) = probe(pairs[0][0])
        channels, img_size = channels or first_channels, img_size or default_size(h, w, None, multiple=1)
    if classes is None:  # the ids the masks hold (read once, at their own size)
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            top = max(pool.map(lambda pm: _max_id(pm[1]), pairs))
        classes = [str(i) for i in range(top + 1)]
    return MaskFiles(pairs, classes, tuple(img_size), channels, colours)


def _max_id(mask: Path) -> int:
    """The largest class id in a mask file (void left out); raises DataError naming an unreadable one."""
    try:
        with Image.open(mask) as mk:
            if mk.mode not in ("L", "P", "1", "I", "I;16"):
                raise DataError(f"{mask}: mode {mk.mode} mask; masks hold one class id per pixel (mode L or P), "
                                "or give RGB colours in classes.yaml 'palette'")
            m = np.array(mk).astype(np.int64)
    except UNREADABLE_IMAGE as e:
        raise DataError(f"{getattr(e, 'filename', None) or mask}: unreadable image ({e})") from None
    if m.max(initial=0) > IGNORE or m.min(initial=0) < 0:
        raise DataError(f"{mask}: class ids must be 0..254 (255 = void), found {m.max()}")
    valid = m[m != IGNORE]
    return int(valid.max()) if valid.size else 0


def load_segmentation(root: str | os.PathLike, val_split: float = 0.1, seed: int = 0,
                      img_size: int | None = None, channels: int | None = None, limit: int | None = None,
                      memory_mb: float = 2048) -> DataSplits:
    """A segmentation folder (one split, or train/ val/ test/) as :class:`DataSplits`: in memory
    (:class:`MaskTensors`) when the decoded images and masks take at most ``memory_mb`` MB, else streamed
    (:class:`MaskFiles`). Images of any sizes are letterboxed to one (masks padded with void)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (a segmentation dataset is a folder with images/ and masks/)")
    size = (img_size, img_size) if img_size else None
    subs = {k: root / d for k, names in SPLIT_DIRS.items() for d in names if (root / d / "images").is_dir()}
    if "train" in subs:
        train = mask_files(subs["train"], channels=channels, img_size=size)
        kw = dict(classes=train.classes, channels=train.channels, img_size=train.img_size)
        val = mask_files(subs["val"], **kw) if "val" in subs else None
        test = mask_files(subs["test"], **kw) if "test" in subs else None
    else:
        train, val, test = mask_files(root, channels=channels, img_size=size), None, None
    train = subset_limit(train, limit, seed)
    if val is None:
        train, val = split_train_val(train, val_split, seed)
    h, w = train.size
    stream = sum(len(p) for p in (train, val, test) if p is not None) * (train.channels + 1) * h * w > memory_mb * 2**20
    return DataSplits(root.name, list(train.classes), hold_masks(train, stream), hold_masks(val, stream),
                      hold_masks(test, stream))


# --- writing -------------------------------------------------------------------------------------------


def write_mask_folder(out: Path, names: list[str], images: Tensor, masks: Tensor, classes: list[str],
                      instances: Tensor | None = None) -> None:
    """``images/``, ``masks/`` (palette PNGs: ids you can read, colours you can see), ``instances/`` when
    given, and ``classes.yaml``."""
    from dcvkit.io import write_yaml

    pal = palette()
    for name, img, m, k in zip(names, images, masks, instances if instances is not None else [None] * len(names)):
        arr = img.permute(1, 2, 0).numpy()
        write_png(out / "images" / f"{name}.png", arr[..., 0] if arr.shape[-1] == 1 else arr)
        write_png(out / "masks" / f"{name}.png", m.numpy(), pal)
        if k is not None:
            write_png(out / "instances" / f"{name}.png", k.numpy(), pal)
    write_yaml(out / "classes.yaml", {"names": list(classes)})


__all__ = ["MaskTensors", "MaskFiles", "mask_files", "hold_masks", "load_mask_folder", "load_segmentation",
           "write_mask_folder", "read_classes", "IGNORE"]
