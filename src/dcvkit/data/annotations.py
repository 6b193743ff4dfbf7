"""The in-memory face of annotated images, shared by the COCO, YOLO, Pascal VOC and mask-folder readers
and writers (:mod:`dcvkit.data.coco`, :mod:`~dcvkit.data.yolo`, :mod:`~dcvkit.data.voc`,
:mod:`~dcvkit.data.masks`), so converting between formats is read one, write another.

Conventions: boxes are ``x1, y1, x2, y2`` float pixel edges; labels index ``classes`` (the object
classes, no background); instance masks are (n, H, W) bool, one per box.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from dcvkit.data.folders import UNREADABLE_IMAGE
from dcvkit.errors import DataError
from dcvkit.io import atomic_write


@dataclass
class AnnotatedImage:
    """One image's objects. ``file`` is relative to the dataset root."""

    file: str
    width: int
    height: int
    boxes: Tensor                       # (n, 4) float32
    labels: Tensor                      # (n,) int64 in [0, len(classes))
    masks: Tensor | None = None         # (n, H, W) bool instance masks, when the format has them


@dataclass
class Annotations:
    """A dataset in one of the formats: its root folder, object classes and images."""

    root: Path
    classes: list[str]
    images: list[AnnotatedImage] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def safe_path(root: Path, relative: str, where: str) -> Path:
    """``root / relative``, refused when it leaves ``root`` (``../``, absolute paths, symlinks out)."""
    root_r = Path(root).resolve()
    p = (root_r / relative).resolve()
    if p != root_r and root_r not in p.parents:
        raise DataError(f"{where}: path '{relative}' points outside the dataset folder {root}; "
                        "paths in annotation files must stay inside it")
    return p


def clean_boxes(boxes: Tensor, labels: Tensor, width: int, height: int, where: str,
                masks: Tensor | None = None, entries: list[str] | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Clip boxes to the image and drop degenerate ones (zero width/height, wholly outside), with one
    warning naming the file and the entries (``entries[i]`` names box i: "annotation 7", "line 3"), so they
    can never reach a loss. A NaN or infinite coordinate, or one a whole image size beyond an edge, is a broken
    file, not a sloppy box: a DataError."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4).float(), labels.reshape(0).long(), masks
    b = boxes.float().clone()
    finite = torch.isfinite(b).all(1)
    if not finite.all():
        i = int((~finite).nonzero()[0])
        entry = f" {entries[i]}:" if entries else ""
        raise DataError(f"{where}:{entry} box coordinates {boxes[i].tolist()} are not finite numbers; "
                        "fix or remove that entry")
    far = ((b[:, 0::2] < -width) | (b[:, 0::2] > 2 * width)).any(1) | ((b[:, 1::2] < -height)
                                                                       | (b[:, 1::2] > 2 * height)).any(1)
    if far.any():  # a sloppy box is clipped; one reaching a whole image beyond an edge is a wrong coordinate
        i = int(far.nonzero()[0])
        entry = f" {entries[i]}:" if entries else ""
        raise DataError(f"{where}:{entry} box {boxes[i].tolist()} reaches more than the image's own size beyond "
                        f"the {width}x{height} image; the coordinates are in another unit or broken (fix or remove "
                        "that entry)")
    b[:, 0::2] = b[:, 0::2].clamp(0, width)
    b[:, 1::2] = b[:, 1::2].clamp(0, height)
    ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    if not ok.all():
        bad = (~ok).nonzero().flatten().tolist()
        named = f" ({', '.join(entries[i] for i in bad[:5])})" if entries else ""
        warnings.warn(f"{where}: dropped {len(bad)} degenerate box(es){named}: zero width/height or outside the "
                      f"{width}x{height} image: {boxes[bad].tolist()[:3]}", stacklevel=2)
    return b[ok], labels[ok].long(), (masks[ok] if masks is not None else None)


def write_png(path: Path, array: np.ndarray, palette: list[int] | None = None) -> None:
    """Write a PNG atomically: (H, W) uint8 (with an optional palette: a colour-coded label map) or
    (H, W, 3) uint8."""
    im = Image.fromarray(array)
    if palette is not None:
        im = im.convert("P") if im.mode != "P" else im
        im.putpalette(palette)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    atomic_write(path, buf.getvalue())


def read_image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, with a clear error when it is missing or unreadable."""
    if not path.is_file():
        raise DataError(f"{path}: image file missing")
    try:
        with Image.open(path) as im:
            return im.size
    except UNREADABLE_IMAGE as e:
        raise DataError(f"{path}: unreadable image ({e})") from None


def palette(n: int = 256) -> list[int]:
    """Pascal VOC's colour map (flat RGB list): class 0 black, then well-separated colours; 255 white-ish
    in VOC is the 'void' border, kept here."""
    pal = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def empty_out_dir(out: str | os.PathLike) -> Path:
    """Create ``out`` for a new dataset; refuse one that already holds files (nothing is overwritten)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: already exists and is not empty; choose a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


__all__ = ["AnnotatedImage", "Annotations", "safe_path", "clean_boxes", "write_png", "read_image_size",
           "palette", "empty_out_dir"]
