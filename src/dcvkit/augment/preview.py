"""``dcv augment preview``: one image and many augmented versions of it, with its mask and boxes drawn
(the course's "create many versions of the same image" slide, for your own config)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from dcvkit.augment.config import AugmentConfig
from dcvkit.augment.pipeline import Augmenter
from dcvkit.errors import ConfigError, DataError


def read_mask(path: str | os.PathLike, size: tuple[int, int]) -> Tensor:
    """A label map (H, W) int64 from a PNG (a 0/255 binary mask becomes 0/1)."""
    from PIL import Image

    from dcvkit.data.folders import UNREADABLE_IMAGE

    try:
        with Image.open(path) as im:
            m = np.array(im.convert("L"), dtype=np.int64)
    except UNREADABLE_IMAGE as e:
        raise DataError(f"{path}: unreadable mask image ({e})") from None
    if m.shape != tuple(size):
        raise DataError(f"{path}: mask is {m.shape[0]}x{m.shape[1]} but the image is {size[0]}x{size[1]}; "
                        "give the mask of that image")
    if set(np.unique(m).tolist()) <= {0, 255}:
        m = m // 255
    return torch.from_numpy(m)


def parse_box(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 4 or vals[2] <= vals[0] or vals[3] <= vals[1]:
        raise ConfigError(f"--box {text}: write x1,y1,x2,y2 in pixels with x2 > x1 and y2 > y1")
    return vals


def preview(cfg: AugmentConfig, images: Sequence[Tensor], out: str | os.PathLike, n: int = 8, seed: int = 0,
            mask: Tensor | None = None, boxes: Tensor | None = None) -> Path:
    """Draw ``n`` augmented versions of each uint8 image (C, H, W) into the PNG ``out``; ``mask`` (H, W) and
    ``boxes`` (k, 4) belong to the first image and are drawn moved with it. Shows the random part in pixel
    units (standardization would make the pictures unreadable)."""
    from dcvkit.viz.plots import plot_augmented

    if n < 1:
        raise ConfigError("--n must be at least 1")
    aug = Augmenter(cfg, seed)
    rows = []
    for i, img in enumerate(images):
        m = mask if i == 0 else None
        bx = boxes if i == 0 else None
        batch = img.unsqueeze(0).expand(n, *img.shape)
        res = aug.augment(batch, masks=None if m is None else m.unsqueeze(0).expand(n, *m.shape),
                          boxes=None if bx is None else [bx] * n)
        row = [(img.float(), m, bx)]
        for k in range(n):
            row.append((res.images[k], None if res.masks is None else res.masks[k],
                        None if res.boxes is None else res.boxes[k]))
        rows.append(row)
    out = Path(out)
    changed = cfg.inline()
    plot_augmented(rows, out, title=changed if len(changed) < 110 else changed[:107] + "...")
    return out
