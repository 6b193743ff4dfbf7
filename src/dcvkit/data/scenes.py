"""FashionScenes: scenes of real Fashion-MNIST items on textured backgrounds, with every label a
segmentation or detection model needs (class masks, instance masks, boxes).

Each item is a Fashion-MNIST image (the train split for training scenes, the test split for test scenes),
scaled, tinted, and pasted where its own pixels are (a pixel belongs to the item when its intensity is
above ``threshold``); items may overlap (a later item hides an earlier one, at most ``max_overlap`` of a
box may be covered) and boxes are the tight boxes of what stays visible. Scene ``i`` depends only on
``(seed, i)``, so ``n`` can grow without changing the first scenes.

Conventions:
    masks: class ids, 0 = background, ``k + 1`` = item class ``k``; ``classes[0] == "background"``.
    instances: 0 = background, ``j + 1`` = the j-th object of ``boxes``/``labels`` of that scene.
    boxes: (n_i, 4) float ``x1, y1, x2, y2`` in pixel edges (a box covering pixels 3..5 is 3..6).
    labels: (n_i,) int64 item class ``k`` in ``0 .. len(classes) - 2`` (detection convention).

>>> from dcvkit.data.scenes import fashion_scenes, SceneConfig   # doctest: +SKIP
>>> s = fashion_scenes(items, n=100, cfg=SceneConfig(size=128), seed=0)
>>> s.images.shape, s.masks.shape
(torch.Size([100, 3, 128, 128]), torch.Size([100, 128, 128]))
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dcvkit.choices import SCENE_FORMATS
from dcvkit.data.core import ImageTensors
from dcvkit.errors import DataError


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are drawn."""

    size: int = 128
    min_objects: int = 2
    max_objects: int = 6
    scale: tuple[float, float] = (1.0, 1.5)  # item side = 28 * scale pixels
    max_overlap: float = 0.25  # at most this fraction of any box may be hidden by later items
    threshold: int = 30  # item pixels brighter than this (0-255) are the item's mask
    tries: int = 30  # placements tried per item before it is left out
    # tints drawn from these (r, g, b) in [0, 1] (scene graphs: "same colour as"); empty: any tint in [0.4, 1]
    palette: tuple[tuple[float, float, float], ...] = ()

    def side(self, g: torch.Generator) -> int:
        """One item's side in pixels."""
        lo, hi = self.scale
        return int(round(28 * (lo + (hi - lo) * float(torch.rand(1, generator=g)))))

    def __post_init__(self) -> None:
        if self.size < 32:
            raise DataError(f"scenes: --size must be at least 32 pixels, got {self.size}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise DataError(f"scenes: need 0 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if not 0 < self.scale[0] <= self.scale[1] or 28 * self.scale[1] > self.size:
            raise DataError(f"scenes: item scale {self.scale} must be positive and fit a {self.size}-pixel scene")


@dataclass
class Scenes:
    """A set of scenes held in memory (see the module docstring for the label conventions)."""

    images: Tensor          # (N, 3, S, S) uint8
    masks: Tensor           # (N, S, S) uint8 class ids
    instances: Tensor       # (N, S, S) uint8 instance ids
    boxes: list[Tensor]     # per scene (n_i, 4) float32
    labels: list[Tensor]    # per scene (n_i,) int64
    classes: list[str]      # ["background", *item classes]
    sources: list[Tensor] = field(default_factory=list)  # per scene (n_i,) index of each item in its split

    def __len__(self) -> int:
        return len(self.images)

    @property
    def item_classes(self) -> list[str]:
        return self.classes[1:]

    def subset(self, index: Tensor) -> "Scenes":
        idx = index.tolist()
        return Scenes(self.images[index], self.masks[index], self.instances[index], [self.boxes[i] for i in idx],
                      [self.labels[i] for i in idx], self.classes,
                      [self.sources[i] for i in idx] if self.sources else [])

    def instance_masks(self, i: int) -> Tensor:
        """(n_i, S, S) bool: one mask per object of scene ``i``."""
        n = len(self.labels[i])
        return self.instances[i][None] == torch.arange(1, n + 1, dtype=self.instances.dtype)[:, None, None]


def background(size: int, g: torch.Generator) -> Tensor:
    """(3, size, size) float in [0, 1]: smooth colour noise, stripes or checks of two dark-to-mid colours,
    plus fine grain."""
    s = size
    kind = int(torch.randint(0, 3, (1,), generator=g))
    base = torch.rand(3, 1, 1, generator=g) * 0.45 + 0.05
    other = torch.rand(3, 1, 1, generator=g) * 0.45 + 0.05
    if kind == 0:  # a random 6x6 colour field, upsampled
        low = torch.rand(1, 3, 6, 6, generator=g) * 0.5
        bg = F.interpolate(low, size=(s, s), mode="bicubic", align_corners=False)[0].clamp(0, 1) + base * 0.5
    else:
        ax = torch.arange(s, dtype=torch.float32)
        yy, xx = ax[:, None], ax[None, :]
        if kind == 1:  # stripes at a random angle and period
            theta = float(torch.rand(1, generator=g)) * math.pi
            period = float(torch.rand(1, generator=g)) * 20 + 6
            pattern = (torch.sin(2 * math.pi * (xx * math.cos(theta) + yy * math.sin(theta)) / period) > 0).float()
        else:  # checks
            cell = float(torch.rand(1, generator=g)) * 16 + 8
            pattern = ((xx // cell) + (yy // cell)) % 2
        bg = base + (other - base) * pattern[None]
    grain = (torch.rand(1, s, s, generator=g) - 0.5) * 0.08
    return (bg + grain).clamp(0, 1)


def tight_box(mask: Tensor) -> tuple[int, int, int, int]:
    """``x1, y1, x2, y2`` (pixel edges) of the True pixels of a non-empty (H, W) mask."""
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def item_pixels(items: ImageTensors, src: int, side: int, threshold: int, g: torch.Generator
                ) -> tuple[Tensor, Tensor] | None:
    """Item ``src`` scaled to ``side`` pixels, flipped left-right half the time, cropped to its mask (pixels
    brighter than ``threshold``): (intensity (h, w) in [0, 1], mask (h, w)); None for a blank item."""
    item = items.images[src, 0].float()[None, None] / 255
    item = F.interpolate(item, size=(side, side), mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)
    if bool(torch.rand(1, generator=g) < 0.5):
        item = item.flip(-1)
    mask = item > threshold / 255
    if not mask.any():
        return None
    c0, r0, c1, r1 = tight_box(mask)
    return item[r0:r1, c0:c1], mask[r0:r1, c0:c1]


def _overlap_ok(box: Tensor, vis: Tensor, existing: list[Tensor], max_overlap: float, inst: Tensor,
                mask: Tensor, x0: int, y0: int) -> bool:
    """Whether pasting ``mask`` at (x0, y0) leaves every earlier object with at least (1 - max_overlap)
    of its visible pixels, and the new box at most ``max_overlap`` covered by earlier boxes."""
    if not existing:
        return True
    boxes = torch.stack(existing)
    ix1 = torch.maximum(boxes[:, 0], box[0]); iy1 = torch.maximum(boxes[:, 1], box[1])
    ix2 = torch.minimum(boxes[:, 2], box[2]); iy2 = torch.minimum(boxes[:, 3], box[3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    area_new = (box[2] - box[0]) * (box[3] - box[1])
    area_old = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    if (inter / area_new).max() > max_overlap or (inter / area_old).max() > max_overlap:
        return False
    h, w = mask.shape
    under = inst[y0:y0 + h, x0:x0 + w][mask]
    if under.numel():
        hidden = torch.bincount(under.long(), minlength=len(existing) + 1)[1:].float()
        if (hidden > max_overlap * vis.float()).any():
            return False
    return True


def fashion_scenes(items: ImageTensors, n: int, cfg: SceneConfig = SceneConfig(), seed: int = 0,
                   progress: bool = False) -> Scenes:
    """``n`` scenes of the (grayscale) ``items``; deterministic in ``(seed, i)`` per scene."""
    if items.channels != 1 or len(items) == 0:
        raise DataError("scenes: the items must be a non-empty grayscale dataset (Fashion-MNIST)")
    s = cfg.size
    images = torch.empty(n, 3, s, s, dtype=torch.uint8)
    masks = torch.zeros(n, s, s, dtype=torch.uint8)
    instances = torch.zeros(n, s, s, dtype=torch.uint8)
    boxes: list[Tensor] = []
    labels: list[Tensor] = []
    sources: list[Tensor] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of tiny ops: intra-op threads only add overhead (measured 5x slower)
    try:
        for i in range(n):
            g = torch.Generator().manual_seed(seed * 7_919 + i * 104_729 + 1)
            img, cm, inst, bx, lb, src = _scene(items, cfg, background(s, g), g)
            images[i], masks[i], instances[i] = img, cm, inst
            boxes.append(bx)
            labels.append(lb)
            sources.append(src)
    finally:
        torch.set_num_threads(threads)
    return Scenes(images, masks, instances, boxes, labels, ["background", *items.classes], sources)


def _scene(items: ImageTensors, cfg: "SceneConfig | PhotoSceneConfig", bg: Tensor, g: torch.Generator,
           record: list[dict] | None = None):
    """One scene on ``bg``; ``record`` (when given) receives, per object kept (in paint order, which is the
    objects' order), its tint's palette index and its whole mask before occlusion (``x0``, ``y0``, ``mask``)."""
    sh, sw = bg.shape[-2:]
    palette = getattr(cfg, "palette", ())
    canvas = bg.clone()
    inst = torch.zeros(sh, sw, dtype=torch.uint8)
    k = int(torch.randint(cfg.min_objects, cfg.max_objects + 1, (1,), generator=g))
    placed_boxes: list[Tensor] = []
    placed_labels: list[int] = []
    placed_src: list[int] = []
    placed_whole: list[dict] = []
    for _ in range(k):
        src = int(torch.randint(0, len(items), (1,), generator=g))
        pixels = item_pixels(items, src, cfg.side(g), cfg.threshold, g)
        if pixels is None:
            continue
        item, mask = pixels
        h, w = mask.shape
        if palette:
            tint = int(torch.randint(0, len(palette), (1,), generator=g))
            colour = torch.tensor(palette[tint], dtype=torch.float32)
        else:
            tint, colour = -1, torch.rand(3, generator=g) * 0.6 + 0.4
        vis = torch.bincount(inst.flatten().long(), minlength=len(placed_boxes) + 1)[1:]
        for _try in range(cfg.tries):
            y0 = int(torch.randint(0, sh - h + 1, (1,), generator=g))
            x0 = int(torch.randint(0, sw - w + 1, (1,), generator=g))
            box = torch.tensor([x0, y0, x0 + w, y0 + h], dtype=torch.float32)
            if _overlap_ok(box, vis, placed_boxes, cfg.max_overlap, inst, mask, x0, y0):
                break
        else:
            continue
        region = canvas[:, y0:y0 + h, x0:x0 + w]
        shade = colour[:, None, None] * (0.3 + 0.7 * item)[None]
        canvas[:, y0:y0 + h, x0:x0 + w] = torch.where(mask[None], shade, region)
        inst[y0:y0 + h, x0:x0 + w][mask] = len(placed_boxes) + 1
        placed_boxes.append(box)
        placed_labels.append(int(items.labels[src]))
        placed_src.append(src)
        placed_whole.append({"tint": tint, "x0": x0, "y0": y0, "mask": mask})
    # Boxes of what stays visible; an object fully hidden cannot happen (max_overlap < 1), but guard anyway.
    boxes, labels, srcs = [], [], []
    remap = torch.zeros(len(placed_boxes) + 1, dtype=torch.uint8)
    for j in range(len(placed_boxes)):
        m = inst == j + 1
        if not m.any():
            continue
        boxes.append([float(v) for v in tight_box(m)])
        labels.append(placed_labels[j])
        srcs.append(placed_src[j])
        if record is not None:
            record.append(placed_whole[j])
        remap[j + 1] = len(boxes)
    inst = remap[inst.long()]
    lab = torch.tensor(labels, dtype=torch.int64)
    cls = torch.zeros(len(boxes) + 1, dtype=torch.uint8)
    cls[1:] = (lab + 1).to(torch.uint8)
    class_mask = cls[inst.long()]
    image = (canvas * 255).round().to(torch.uint8)
    return (image, class_mask, inst, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), lab,
            torch.tensor(srcs, dtype=torch.int64))


FORMATS = SCENE_FORMATS
_IMAGE_DIR = {"coco": "images", "yolo": "images", "voc": "JPEGImages"}


# --- real sizes: items from 12 px to most of the image, on scikit-image's photographs ------------------------

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "brick",
          "grass", "gravel", "camera", "coins", "moon")  # the photographs scikit-image ships (no download)


@dataclass(frozen=True)
class PhotoSceneConfig:
    """Scenes at real sizes: ``height x width`` crops of real photographs with ``min_objects`` to
    ``max_objects`` items whose sides are log-uniform from ``min_side`` pixels to ``max_fraction`` of the
    shorter image side (a dataset's spread of scales, which one stride-8 grid cannot cover)."""

    height: int = 480
    width: int = 640
    min_objects: int = 3
    max_objects: int = 24
    min_side: int = 12
    max_fraction: float = 0.8
    max_overlap: float = 0.25
    threshold: int = 30
    tries: int = 30

    def __post_init__(self) -> None:
        if min(self.height, self.width) < 64:
            raise DataError(f"scenes: photo scenes are at least 64x64 pixels, got {self.width}x{self.height}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise DataError(f"scenes: need 0 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if not 4 <= self.min_side <= self.max_fraction * min(self.height, self.width):
            raise DataError(f"scenes: item sides from {self.min_side} px to {self.max_fraction:g} of the shorter "
                            f"side ({min(self.height, self.width)} px) must be an increasing range above 4 px")

    def side(self, g: torch.Generator) -> int:
        lo, hi = math.log(self.min_side), math.log(self.max_fraction * min(self.height, self.width))
        return int(round(math.exp(lo + (hi - lo) * float(torch.rand(1, generator=g)))))


def load_photos() -> list[Tensor]:
    """scikit-image's photographs as (3, h, w) float tensors in [0, 1] (grey ones repeated to 3 channels)."""
    import skimage.data

    out = []
    for name in PHOTOS:
        a = torch.from_numpy(getattr(skimage.data, name)()).float() / 255
        a = a[..., :3].permute(2, 0, 1) if a.ndim == 3 else a[None].expand(3, -1, -1)
        out.append(a.contiguous())
    return out


def _photo_background(photos: list[Tensor], h: int, w: int, g: torch.Generator) -> Tensor:
    """(3, h, w): a random crop (40-100 % of a random photograph's side, the scene's aspect ratio) resized,
    maybe mirrored, its brightness scaled by 0.6-1.1."""
    ph = photos[int(torch.randint(0, len(photos), (1,), generator=g))]
    H, W = ph.shape[-2:]
    frac = 0.4 + 0.6 * float(torch.rand(1, generator=g))
    ch = min(H, int(W * h / w)) * frac
    cw, ch = int(ch * w / h), int(ch)
    y0 = int(torch.randint(0, H - ch + 1, (1,), generator=g))
    x0 = int(torch.randint(0, W - cw + 1, (1,), generator=g))
    crop = F.interpolate(ph[None, :, y0:y0 + ch, x0:x0 + cw], size=(h, w), mode="bilinear", align_corners=False,
                         antialias=True)[0]
    if bool(torch.rand(1, generator=g) < 0.5):
        crop = crop.flip(-1)
    return (crop * (0.6 + 0.5 * float(torch.rand(1, generator=g)))).clamp(0, 1)


def photo_scene(items: ImageTensors, cfg: PhotoSceneConfig, photos: list[Tensor], seed: int, i: int):
    """Scene ``i``: (image (3, H, W) uint8, class mask (H, W), instance ids (H, W), boxes, labels), a function
    of ``(seed, i)`` alone."""
    g = torch.Generator().manual_seed(seed * 7_919 + i * 104_729 + 3)
    return _scene(items, cfg, _photo_background(photos, cfg.height, cfg.width, g), g)[:5]


_POOL: dict = {}


def _write_chunk(job: tuple[list[int], str, str, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """A worker writes its scenes' image files (and masks); returns their boxes and labels (as NumPy arrays:
    tensors would travel as shared-memory file descriptors, which run out over thousands of scenes)."""
    from PIL import Image

    from dcvkit.data.annotations import palette, write_png

    idx, root, fmt, seed = job
    items, cfg, photos = _POOL["items"], _POOL["cfg"], _POOL["photos"]
    torch.set_num_threads(1)
    out = []
    for i in idx:
        img, cm, _inst, boxes, labels = photo_scene(items, cfg, photos, seed, i)
        path = Path(root) / _IMAGE_DIR.get(fmt, "images") / f"{i:06d}.jpg"
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(path, quality=92)
        if fmt == "masks":
            write_png(Path(root) / "masks" / f"{i:06d}.png", cm.numpy(), palette())
        out.append((boxes.numpy(), labels.numpy()))
    return out


def write_photo_scenes(items: ImageTensors, n: int, out: str | os.PathLike, fmt: str = "yolo",
                       cfg: PhotoSceneConfig = PhotoSceneConfig(), seed: int = 0, workers: int | None = None,
                       progress: bool = False, provenance: dict | None = None) -> tuple[Path, int]:
    """Write ``n`` real-size scenes into a new folder, generated and encoded (JPEG) in ``workers`` processes
    and never held in memory together: ``yolo``, ``coco``, ``voc`` (boxes) or ``masks`` (images/ + masks/ for
    segmentation). Returns the folder and the number of objects."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from dcvkit.data import coco, voc, yolo
    from dcvkit.data.annotations import AnnotatedImage, Annotations, empty_out_dir
    from dcvkit.io import atomic_write, write_yaml

    if fmt not in FORMATS:
        raise DataError(f"unknown scene format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if items.channels != 1 or len(items) == 0:
        raise DataError("scenes: the items must be a non-empty grayscale dataset (Fashion-MNIST)")
    root = empty_out_dir(out)
    (root / _IMAGE_DIR.get(fmt, "images")).mkdir(parents=True, exist_ok=True)
    if fmt == "masks":
        (root / "masks").mkdir(exist_ok=True)
    _POOL.update(items=items, cfg=cfg, photos=load_photos())
    jobs = [(list(range(a, min(n, a + 50))), str(root), fmt, seed) for a in range(0, n, 50)]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    results: list[tuple[np.ndarray, np.ndarray]] = []
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        it = pool.map(_write_chunk, jobs)
        if progress:
            from dcvkit.engine.loop import console
            from dcvkit.progress import track

            it = track(it, total=len(jobs), description=f"writing {n} {cfg.width}x{cfg.height} scenes ({fmt})",
                       console=console)
        for chunk in it:
            results.extend(chunk)
    _POOL.clear()
    names = ["background", *items.classes]
    folder = _IMAGE_DIR.get(fmt, "images")
    if fmt == "masks":
        write_yaml(root / "classes.yaml", {"names": names})
    else:
        ann = Annotations(root, list(items.classes), [
            AnnotatedImage(f"{folder}/{i:06d}.jpg", cfg.width, cfg.height, torch.from_numpy(b), torch.from_numpy(lab))
            for i, (b, lab) in enumerate(results)])
        if fmt == "coco":
            coco.write(ann, root / "annotations.json")
        elif fmt == "yolo":
            yolo.write(ann, root)
        else:
            voc.write(ann, root)
            atomic_write(root / "classes.txt", "".join(c + "\n" for c in ann.classes))
    objects = sum(len(b) for b, _ in results)
    write_yaml(root / "scenes.yaml", {"generator": "dcvkit photo scenes", "format": fmt, "scenes": n,
                                      "objects": objects, "classes": names, "size": [cfg.height, cfg.width],
                                      "photos": list(PHOTOS), **(provenance or {})})
    return root, objects



def scene_annotations(scenes: Scenes, root: Path, image_dir: str, names: list[str]):
    """The scenes as :class:`~dcvkit.data.annotations.Annotations` (boxes, labels, instance masks)."""
    from dcvkit.data.annotations import AnnotatedImage, Annotations

    s = scenes.images.shape[-1]
    return Annotations(root, scenes.item_classes, [
        AnnotatedImage(f"{image_dir}/{name}.png", s, s, scenes.boxes[i], scenes.labels[i], scenes.instance_masks(i))
        for i, name in enumerate(names)])


def write_scenes(scenes: Scenes, out: str | os.PathLike, fmt: str = "masks", progress: bool = False,
                 provenance: dict | None = None) -> Path:
    """Write ``scenes`` into a new folder ``out`` as ``masks`` (images/, masks/, instances/, classes.yaml),
    ``coco`` (images/ + annotations.json with RLE masks), ``yolo`` (images/, labels/, data.yaml) or
    ``voc`` (JPEGImages/, Annotations/, SegmentationClass/, SegmentationObject/, ImageSets/)."""
    from dcvkit.data import coco, voc, yolo
    from dcvkit.data.annotations import empty_out_dir, write_png
    from dcvkit.data.masks import write_mask_folder
    from dcvkit.io import atomic_write, write_yaml

    if fmt not in FORMATS:
        raise DataError(f"unknown scene format '{fmt}'; choose one of {', '.join(FORMATS)}")
    root = empty_out_dir(out)
    names = [f"{i:06d}" for i in range(len(scenes))]
    chunks = [range(i, min(len(scenes), i + 100)) for i in range(0, len(scenes), 100)]
    if progress:
        from dcvkit.engine.loop import console
        from dcvkit.progress import track

        chunks = track(chunks, description=f"writing {len(scenes)} scenes ({fmt})", console=console)
    for chunk in chunks:
        idx = list(chunk)
        if fmt == "masks":
            write_mask_folder(root, [names[i] for i in idx], scenes.images[idx], scenes.masks[idx], scenes.classes,
                              scenes.instances[idx])
        else:
            for i in idx:
                write_png(root / _IMAGE_DIR[fmt] / f"{names[i]}.png", scenes.images[i].permute(1, 2, 0).numpy())
    if fmt != "masks":
        ann = scene_annotations(scenes, root, _IMAGE_DIR[fmt], names)
        if fmt == "coco":
            coco.write(ann, root / "annotations.json")
        elif fmt == "yolo":
            yolo.write(ann, root)
        else:
            voc.write(ann, root)
            atomic_write(root / "classes.txt", "".join(c + "\n" for c in ann.classes))
    write_yaml(root / "scenes.yaml", {"generator": "dcvkit FashionScenes", "format": fmt, "scenes": len(scenes),
                                      "classes": scenes.classes, **(provenance or {})})
    return root


__all__ = ["SceneConfig", "Scenes", "fashion_scenes", "write_scenes", "scene_annotations", "FORMATS",
           "PhotoSceneConfig",
           "photo_scene", "write_photo_scenes", "load_photos", "PHOTOS"]
