"""Moving FashionScenes: clips in which Fashion-MNIST items move over a textured background with true,
persistent identities: the data of ``dcv track`` and ``dcv bench track``.

Each item (the train split's items for training clips, the test split's for test clips) is scaled, tinted
and given a depth; it moves at a constant velocity disturbed every frame by noise in heading and speed, with
now and then a sharper turn; it enters from an edge and leaves the frame, or bounces off the edges. Items
drawn later in depth order hide the ones behind, so items that cross occlude each other. Per frame the ground
truth is each item's id, class, the tight box of what is visible (the box a FashionScenes detector is trained
to find) and its visible fraction; an item less than ``min_visibility`` visible has no row that frame (a
tracker is not asked to report what cannot be seen).

Clip ``i`` depends only on ``(seed, i)``. :func:`write_clips` writes the MOTChallenge layout
(``<out>/clip-000/{seqinfo.ini, img1/, gt/gt.txt}``, ``<out>/seqmaps/<split>.txt``) and, with ``video``,
an MP4 per clip.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dcvkit.data.core import ImageTensors
from dcvkit.data.mot import MotBoxes, mot_lines, write_seqmap, write_sequence, write_video
from dcvkit.data.scenes import background, item_pixels, tight_box
from dcvkit.errors import DataError


@dataclass(frozen=True)
class ClipConfig:
    """How clips are drawn (sizes in pixels, speeds in pixels per frame)."""

    size: int = 128
    frames: int = 60
    min_objects: int = 3
    max_objects: int = 6
    scale: tuple[float, float] = (1.0, 1.5)  # item side = 28 * scale
    speed: tuple[float, float] = (0.5, 2.5)
    turn: float = 0.04  # std of the heading's change per frame (radians)
    sharp_turn: float = 0.02  # chance per frame of a turn of up to 90 degrees
    speed_noise: float = 0.03  # std of the speed's relative change per frame
    enter: float = 0.04  # chance per frame that a new item enters from an edge (while under max_objects)
    bounce: float = 0.5  # share of items that bounce off the edges instead of leaving
    min_visibility: float = 0.2
    threshold: int = 30  # item pixels brighter than this (0-255) belong to the item

    def __post_init__(self) -> None:
        if self.size < 32 or self.frames < 1:
            raise DataError(f"clips: need a size of at least 32 pixels and at least one frame, got {self.size}, "
                            f"{self.frames}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise DataError(f"clips: need 0 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if not 0 < self.speed[0] <= self.speed[1]:
            raise DataError(f"clips: speeds must be positive, lower first; got {self.speed}")


@dataclass
class Clip:
    """One clip: frames (T, 3, S, S) uint8 and per frame its ground truth (ids, boxes, classes = item classes
    0-based, visibility)."""

    frames: Tensor
    gt: list[MotBoxes]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.frames)

    def gt_lines(self) -> list[str]:
        """The clip's ``gt.txt`` (MOT17's 9 columns; class written 1-based, as MOT numbers classes)."""
        lines = []
        for t, g in enumerate(self.gt, 1):
            lines += mot_lines(t, g.ids, g.boxes, classes=g.classes + 1, visibility=g.visibility)
        return lines


class _Item:
    """A moving item: its pixels (shade (3, h, w) in [0, 1], mask (h, w)), position (top left, float),
    velocity, depth, identity."""

    def __init__(self, shade: Tensor, mask: Tensor, label: int, ident: int, x: float, y: float, speed: float,
                 heading: float, depth: float, bounces: bool):
        self.shade, self.mask, self.label, self.ident = shade, mask, label, ident
        self.x, self.y, self.speed, self.heading, self.depth, self.bounces = x, y, speed, heading, depth, bounces
        self.h, self.w = mask.shape
        self.area = int(mask.sum())


def _make_item(items: ImageTensors, cfg: ClipConfig, g: torch.Generator, src: int | None = None
               ) -> tuple[Tensor, Tensor, int] | None:
    src = int(torch.randint(0, len(items), (1,), generator=g)) if src is None else src
    lo, hi = cfg.scale
    side = int(round(28 * (lo + (hi - lo) * float(torch.rand(1, generator=g)))))
    pixels = item_pixels(items, src, side, cfg.threshold, g)
    if pixels is None:
        return None
    item, mask = pixels
    colour = torch.rand(3, generator=g) * 0.6 + 0.4
    return colour[:, None, None] * (0.3 + 0.7 * item)[None], mask, int(items.labels[src])


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=g))


def _enter(items: ImageTensors, cfg: ClipConfig, g: torch.Generator, ident: int, inside: bool) -> _Item | None:
    made = _make_item(items, cfg, g)
    if made is None:
        return None
    shade, mask, label = made
    h, w = mask.shape
    s = cfg.size
    speed = _uniform(g, *cfg.speed)
    if inside:  # at the start: anywhere, any direction
        x, y = _uniform(g, 0, s - w), _uniform(g, 0, s - h)
        heading = _uniform(g, -math.pi, math.pi)
    else:  # from an edge, heading inwards (within 60 degrees of the normal)
        edge = int(torch.randint(0, 4, (1,), generator=g))
        along = _uniform(g, 0, s - max(h, w))
        normal = (0.0, math.pi / 2, math.pi, -math.pi / 2)[edge]  # from the left, top, right, bottom
        x, y = ((-w + 1, along), (along, -h + 1), (s - 1, along), (along, s - 1))[edge]
        heading = normal + _uniform(g, -math.pi / 3, math.pi / 3)
    return _Item(shade, mask, label, ident, x, y, speed, heading, float(torch.rand(1, generator=g)),
                 bool(torch.rand(1, generator=g) < cfg.bounce))


def _move(it: _Item, cfg: ClipConfig, g: torch.Generator) -> None:
    it.heading += float(torch.randn(1, generator=g)) * cfg.turn
    if bool(torch.rand(1, generator=g) < cfg.sharp_turn):
        it.heading += _uniform(g, -math.pi / 2, math.pi / 2)
    it.speed = float(np.clip(it.speed * (1 + float(torch.randn(1, generator=g)) * cfg.speed_noise), *cfg.speed))
    it.x += it.speed * math.cos(it.heading)
    it.y += it.speed * math.sin(it.heading)
    if it.bounces:
        s = cfg.size
        if it.x < 0 or it.x + it.w > s:
            it.heading = math.pi - it.heading
            it.x = float(np.clip(it.x, 0, s - it.w))
        if it.y < 0 or it.y + it.h > s:
            it.heading = -it.heading
            it.y = float(np.clip(it.y, 0, s - it.h))


def _render(bg: Tensor, objects: list[_Item], cfg: ClipConfig) -> tuple[Tensor, MotBoxes]:
    s = cfg.size
    canvas = bg.clone()
    owner = torch.full((s, s), -1, dtype=torch.int64)
    order = sorted(range(len(objects)), key=lambda k: objects[k].depth)
    for k in order:  # far to near: a nearer item covers a farther one
        it = objects[k]
        x0, y0 = int(round(it.x)), int(round(it.y))
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + it.w, s), min(y0 + it.h, s)
        if cx0 >= cx1 or cy0 >= cy1:
            continue
        m = it.mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        canvas[:, cy0:cy1, cx0:cx1] = torch.where(m[None], it.shade[:, cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0],
                                                  canvas[:, cy0:cy1, cx0:cx1])
        owner[cy0:cy1, cx0:cx1][m] = k
    ids, boxes, labels, vis = [], [], [], []
    counts = torch.bincount(owner[owner >= 0], minlength=len(objects))
    for k, it in enumerate(objects):
        visible = int(counts[k]) if k < len(counts) else 0
        v = visible / it.area
        if v < cfg.min_visibility or visible < 16:
            continue
        ids.append(it.ident)
        boxes.append(tight_box(owner == k))
        labels.append(it.label)
        vis.append(v)
    gt = MotBoxes(np.array(ids, np.int64), np.array(boxes, np.float64).reshape(-1, 4), np.ones(len(ids)),
                  np.array(labels, np.int64), np.array(vis))
    return (canvas * 255).round().to(torch.uint8), gt


def make_clip(items: ImageTensors, cfg: ClipConfig = ClipConfig(), seed: int = 0, index: int = 0) -> Clip:
    """Clip ``index`` of the clips of ``seed`` (see the module docstring)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    bg = background(cfg.size, g)
    objects: list[_Item] = []
    next_id = 1
    for _ in range(int(torch.randint(cfg.min_objects, cfg.max_objects + 1, (1,), generator=g))):
        it = _enter(items, cfg, g, next_id, inside=True)
        if it is not None:
            objects.append(it)
            next_id += 1
    frames, gts = [], []
    for t in range(cfg.frames):
        if t:
            for it in objects:
                _move(it, cfg, g)
            s = cfg.size
            objects = [it for it in objects if it.x < s and it.y < s and it.x + it.w > 0 and it.y + it.h > 0]
            if len(objects) < cfg.max_objects and bool(torch.rand(1, generator=g) < cfg.enter):
                it = _enter(items, cfg, g, next_id, inside=False)
                if it is not None:
                    objects.append(it)
                    next_id += 1
        frame, gt = _render(bg, objects, cfg)
        frames.append(frame)
        gts.append(gt)
    return Clip(torch.stack(frames), gts, list(items.classes))


def crossing_clip(items: ImageTensors, label: int = 0, size: int = 128, frames: int = 48, seed: int = 0) -> Clip:
    """Two items of the same class (``label``) that cross: one moves right, the other left, a pixel apart
    vertically; the right-moving one is in front and larger (side 42 vs 28 pixels), so the other is hidden
    entirely for a few frames (the appearance tracker's test)."""
    g = torch.Generator().manual_seed(seed)
    cfg = ClipConfig(size=size, frames=frames, min_objects=0, max_objects=2, turn=0.0, sharp_turn=0.0,
                     speed_noise=0.0, enter=0.0, bounce=0.0)
    pool = (items.labels == label).nonzero().flatten()
    if len(pool) < 2:
        raise DataError(f"crossing clip: fewer than two items of class {label}")
    picks = pool[torch.randperm(len(pool), generator=g)[:2]].tolist()
    objects = []
    for k, (src, x, heading, depth, scale) in enumerate(((picks[0], 4.0, 0.0, 1.0, 1.5),
                                                         (picks[1], size - 40.0, math.pi, 0.0, 1.0))):
        made = _make_item(items, dataclasses.replace(cfg, scale=(scale, scale)), g, src)
        if made is None:
            raise DataError(f"crossing clip: item {src} is blank")
        shade, mask, lab = made
        y = size / 2 - mask.shape[0] / 2 + (1 if k else -1)
        objects.append(_Item(shade, mask, lab, k + 1, x, y, (size - 40.0) / frames, heading, depth, False))
    bg = background(size, g)
    out, gts = [], []
    for t in range(frames):
        if t:
            for it in objects:
                _move(it, cfg, g)
        frame, gt = _render(bg, objects, cfg)
        out.append(frame)
        gts.append(gt)
    return Clip(torch.stack(out), gts, list(items.classes))


def write_clips(clips: list[Clip], out: str | Path, split: str = "test", video: bool = False, fps: float = 25.0,
                prefix: str = "clip") -> list[Path]:
    """The clips as MOTChallenge sequences (``<out>/<prefix>-000``, ...) and a seqmap; MP4s with ``video``."""
    out = Path(out)
    names, paths = [], []
    for i, clip in enumerate(clips):
        name = f"{prefix}-{i:03d}"
        frames = [f.permute(1, 2, 0).numpy() for f in clip.frames]
        paths.append(write_sequence(out, name, frames, clip.gt_lines(), fps))
        if video:
            write_video(out / f"{name}.mp4", frames, fps)
        names.append(name)
    write_seqmap(out, split, names)
    return paths


__all__ = ["ClipConfig", "Clip", "make_clip", "crossing_clip", "write_clips"]
