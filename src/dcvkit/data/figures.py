"""Articulated figures with exact keypoints: the data of pose estimation.

A figure is a 2-D puppet on COCO's 17-keypoint kinematic tree, seen from the front (its left side on the
image's right, as a person facing the camera): a pelvis, a torso leaning by ``lean``, a head on the neck,
and two arms and two legs whose joints turn within limits (:data:`LIMITS`). Limb lengths are proportions of
the figure's height, each varied a little per figure. :func:`forward_kinematics` turns a :class:`Pose` into
the 17 keypoints.

Each figure is drawn as thick limbs textured with Fashion-MNIST items: a top (T-shirt, pullover, dress,
coat or shirt) on the torso and upper arms, trousers on the legs, shoes at the ankles, skin-toned forearms
and head, all tinted; the items come from the split asked for (train figures from the train split's items,
test figures from the test split's). Several figures per image, drawn in a random depth order over a
textured background (FashionScenes'), overlap. A keypoint's visibility: 2 where its figure is what shows
at that point, 1 where another figure hides it, 0 outside the image (COCO then writes 0, 0, 0). The box is
the tight box of what is visible of the figure and the area its visible pixel count (COCO's segment area,
which OKS scales by).

Image ``i`` depends only on ``(seed, i)``. :func:`write_figures` writes COCO person_keypoints JSON or
YOLO-pose (:mod:`dcvkit.data.keypoints`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dcvkit.data.core import ImageTensors
from dcvkit.data.keypoints import COCO17_SCHEMA, PoseAnnotations, PoseImage, write_coco, write_yolo
from dcvkit.data.scenes import background
from dcvkit.errors import DataError

#: joint angle limits (radians): lean from vertical; arms and legs by their angle out from hanging straight
#: down (positive: away from the body), elbows and knees by how far the lower limb turns back in
LIMITS = {"lean": (-0.35, 0.35), "head": (-0.3, 0.3), "shoulder": (-0.3, 2.6), "elbow": (0.0, 2.3),
          "hip": (-0.25, 0.9), "knee": (0.0, 1.2)}
#: body proportions as fractions of the figure's height
PROPORTIONS = {"torso": 0.30, "neck": 0.10, "shoulder": 0.11, "hip": 0.07, "upper_arm": 0.17, "forearm": 0.15,
               "thigh": 0.24, "shin": 0.23, "eye": 0.025, "ear": 0.05, "head": 0.065}
TOPS, TROUSERS, SHOES = (0, 2, 3, 4, 6), (1,), (5, 7, 9)


@dataclass(frozen=True)
class Pose:
    """Where a figure stands and how it holds itself: pelvis centre (x, y), height in pixels, and the joint
    angles (radians, see :data:`LIMITS`); ``proportions`` scale each limb (1 = :data:`PROPORTIONS`)."""

    x: float
    y: float
    height: float
    lean: float = 0.0
    head: float = 0.0
    shoulder: tuple[float, float] = (0.0, 0.0)  # left, right
    elbow: tuple[float, float] = (0.0, 0.0)
    hip: tuple[float, float] = (0.0, 0.0)
    knee: tuple[float, float] = (0.0, 0.0)
    proportions: tuple[float, ...] = ()


def forward_kinematics(p: Pose) -> np.ndarray:
    """The 17 COCO keypoints (17, 2) of a pose, x right and y down in pixels."""
    length = dict(PROPORTIONS)
    for (name, _), f in zip(PROPORTIONS.items(), p.proportions):
        length[name] *= f
    h = p.height
    up = np.array([math.sin(p.lean), -math.cos(p.lean)])
    side = np.array([math.cos(p.lean), math.sin(p.lean)])  # the figure's left: the image's right

    def limb(angle: float, sign: float) -> np.ndarray:  # down, turned by `angle` away from the body
        return -up * math.cos(angle) + sign * side * math.sin(angle)

    pelvis = np.array([p.x, p.y])
    neck = pelvis + up * length["torso"] * h
    head_dir = up * math.cos(p.head) + side * math.sin(p.head)
    head_side = np.array([-head_dir[1], head_dir[0]])  # the head's own left
    nose = neck + head_dir * length["neck"] * h
    k = np.zeros((17, 2))
    k[0] = nose
    for i, sign in ((0, 1.0), (1, -1.0)):  # left, right
        k[1 + i] = nose + sign * head_side * length["eye"] * h + head_dir * 0.02 * h
        k[3 + i] = nose + sign * head_side * length["ear"] * h - head_dir * 0.01 * h
        shoulder = neck + sign * side * length["shoulder"] * h
        elbow = shoulder + limb(p.shoulder[i], sign) * length["upper_arm"] * h
        wrist = elbow + limb(p.shoulder[i] - p.elbow[i], sign) * length["forearm"] * h
        hip = pelvis + sign * side * length["hip"] * h
        knee = hip + limb(p.hip[i], sign) * length["thigh"] * h
        ankle = knee + limb(p.hip[i] - p.knee[i], sign) * length["shin"] * h
        k[5 + i], k[7 + i], k[9 + i], k[11 + i], k[13 + i], k[15 + i] = shoulder, elbow, wrist, hip, knee, ankle
    return k


def random_pose(rng: np.random.Generator, size: int, height: tuple[float, float]) -> Pose:
    """A pose within the limits, its pelvis placed so that most of the figure is in the image."""
    h = rng.uniform(*height)
    u = lambda name: float(rng.uniform(*LIMITS[name]))  # noqa: E731
    x = rng.uniform(0.1 * size, 0.9 * size)
    y = rng.uniform(0.15 * size + 0.4 * h, 0.95 * size - 0.3 * h) if size > 0.75 * h else size / 2 + 0.05 * h
    return Pose(float(x), float(y), float(h), u("lean"), u("head"), (u("shoulder"), u("shoulder")),
                (u("elbow"), u("elbow")), (u("hip"), u("hip")), (u("knee"), u("knee")),
                tuple(float(v) for v in rng.uniform(0.9, 1.1, len(PROPORTIONS))))


@dataclass(frozen=True)
class FigureConfig:
    """How figure images are drawn (pixels)."""

    size: int = 128
    min_figures: int = 1
    max_figures: int = 3
    height: tuple[float, float] = (56.0, 112.0)
    threshold: int = 30  # item pixels brighter than this (0-255) belong to the item (shoes' outline)

    def __post_init__(self) -> None:
        if self.size < 32:
            raise DataError(f"figures: need a size of at least 32 pixels, got {self.size}")
        if not 1 <= self.min_figures <= self.max_figures:
            raise DataError(f"figures: need 1 <= min_figures <= max_figures, got {self.min_figures}, "
                            f"{self.max_figures}")
        if not 0 < self.height[0] <= self.height[1]:
            raise DataError(f"figures: figure heights must be positive, lower first; got {self.height}")


# limbs in drawing order: (from keypoint, to keypoint, width as a fraction of height, texture)
_LIMBS = ((11, 13, 0.075, "trousers"), (13, 15, 0.065, "trousers"), (12, 14, 0.075, "trousers"),
          (14, 16, 0.065, "trousers"), (None, None, 0.0, "torso"), (5, 7, 0.06, "top"), (7, 9, 0.05, "skin"),
          (6, 8, 0.06, "top"), (8, 10, 0.05, "skin"))


def _item(items: ImageTensors, classes: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    pool = np.nonzero(np.isin(items.labels.numpy(), classes))[0]
    if len(pool) == 0:
        raise DataError(f"figures: the items hold none of classes {classes}")
    return items.images[int(rng.choice(pool)), 0].numpy().astype(np.float32) / 255


def _paste(canvas: np.ndarray, owner: np.ndarray, texture: np.ndarray, mask: np.ndarray, tint: np.ndarray,
           who: int) -> None:
    shade = tint[None, None, :] * (0.35 + 0.65 * texture[..., None])
    canvas[mask] = shade[mask]
    owner[mask] = who


def _draw_figure(canvas: np.ndarray, owner: np.ndarray, k: np.ndarray, h: float, who: int, items: ImageTensors,
                 rng: np.random.Generator, threshold: int) -> None:
    import cv2

    s = canvas.shape[0]
    tints = {name: rng.uniform(0.35, 1.0, 3) for name in ("top", "trousers", "shoes")}
    skin = np.array([0.95, 0.75, 0.6]) * rng.uniform(0.45, 1.0)
    textures = {"top": _item(items, TOPS, rng), "trousers": _item(items, TROUSERS, rng)}
    grain = rng.uniform(0.85, 1.0, (s, s)).astype(np.float32)

    def textured(poly: np.ndarray, texture: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The texture mapped onto the quadrilateral ``poly`` (4, 2: the item's top-left, top-right,
        bottom-right, bottom-left corners), and the quadrilateral's mask."""
        mask = np.zeros((s, s), np.uint8)
        cv2.fillConvexPoly(mask, np.round(poly).astype(np.int32), 1)
        if texture is None:
            return grain, mask.astype(bool)
        src = np.float32([[0, 0], [27, 0], [27, 27]])
        m = cv2.getAffineTransform(src, np.float32(poly[:3]))
        return cv2.warpAffine(texture, m, (s, s), flags=cv2.INTER_LINEAR), mask.astype(bool)

    for a, b, width, kind in _LIMBS:
        if kind == "torso":
            poly = np.array([k[6] + (k[6] - k[5]) * 0.15, k[5] + (k[5] - k[6]) * 0.15,
                             k[11] + (k[11] - k[12]) * 0.3, k[12] + (k[12] - k[11]) * 0.3])
            tex, mask = textured(poly[[1, 0, 3, 2]], textures["top"])
            _paste(canvas, owner, tex, mask, tints["top"], who)
            continue
        p, q = k[a], k[b]
        d = q - p
        n = np.array([-d[1], d[0]]) / max(np.linalg.norm(d), 1e-6) * width * h / 2
        ext = d / max(np.linalg.norm(d), 1e-6) * width * h / 3  # a little past each joint
        poly = np.array([p - ext + n, p - ext - n, q + ext - n, q + ext + n])
        if kind == "skin":
            tex, mask = textured(poly, None)
            _paste(canvas, owner, tex, mask, skin, who)
        else:
            tex, mask = textured(poly, textures[kind])
            _paste(canvas, owner, tex, mask, tints[kind], who)
    for ankle, knee in ((15, 13), (16, 14)):  # shoes: the item's own outline, toes outwards
        shoe = _item(items, SHOES, rng)
        if ankle == 16:
            shoe = shoe[:, ::-1].copy()
        side = 0.13 * h
        centre = k[ankle] + (k[ankle] - k[knee]) / max(np.linalg.norm(k[ankle] - k[knee]), 1e-6) * side * 0.25
        poly = np.array([centre + [-side / 2, -side / 2], centre + [side / 2, -side / 2],
                         centre + [side / 2, side / 2], centre + [-side / 2, side / 2]])
        tex, quad = textured(poly, shoe)
        _paste(canvas, owner, tex, quad & (tex > threshold / 255), tints["shoes"], who)
    centre = (k[0] + k[3] + k[4]) / 3  # the head: a disc
    head = np.zeros((s, s), np.uint8)
    cv2.circle(head, tuple(int(round(v)) for v in centre), max(1, int(round(PROPORTIONS["head"] * h))), 1, -1)
    _paste(canvas, owner, grain, head.astype(bool), skin, who)


def figure_image(items: ImageTensors, cfg: FigureConfig = FigureConfig(), seed: int = 0, index: int = 0
                 ) -> tuple[np.ndarray, PoseImage]:
    """Image ``index`` of the figures of ``seed``: (image (S, S, 3) uint8, its annotation)."""
    rng = np.random.default_rng([seed, index])
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    s = cfg.size
    canvas = background(s, g).permute(1, 2, 0).numpy().astype(np.float64)
    owner = np.full((s, s), -1, np.int64)
    n = int(rng.integers(cfg.min_figures, cfg.max_figures + 1))
    poses = [random_pose(rng, s, cfg.height) for _ in range(n)]
    kps = [forward_kinematics(p) for p in poses]
    for who, (p, k) in enumerate(zip(poses, kps)):  # drawn in this order: later figures are nearer
        _draw_figure(canvas, owner, k, p.height, who, items, rng, cfg.threshold)
    boxes, keypoints, areas = [], [], []
    for who, k in enumerate(kps):
        mine = owner == who
        if mine.sum() < 16:
            continue
        ys, xs = np.nonzero(mine)
        kv = np.zeros((17, 3))
        for j, (x, y) in enumerate(k):
            inside = 0 <= x < s and 0 <= y < s
            if not inside:
                continue
            xi, yi = int(x), int(y)
            near = owner[max(0, yi - 1):yi + 2, max(0, xi - 1):xi + 2]
            kv[j] = (x, y, 2 if (near == who).any() else 1)
        if not (kv[:, 2] > 0).any():
            continue
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        keypoints.append(kv)
        areas.append(float(mine.sum()))
    image = (np.clip(canvas, 0, 1) * 255).round().astype(np.uint8)
    return image, PoseImage(f"{index:06d}.png", s, s, np.array(boxes, np.float64).reshape(-1, 4),
                            np.array(keypoints).reshape(-1, 17, 3), np.array(areas))


def write_figures(items: ImageTensors, n: int, out: str | Path, fmt: str = "coco", cfg: FigureConfig = FigureConfig(),
                  seed: int = 0, progress: bool = False) -> tuple[Path, int]:
    """``n`` figure images into a new folder: ``images/`` and ``annotations.json`` (COCO person_keypoints)
    or ``labels/`` and ``data.yaml`` (YOLO-pose). Returns (folder, number of figures)."""
    from dcvkit.data.annotations import empty_out_dir, write_png

    if fmt not in ("coco", "yolo"):
        raise DataError(f"figures: format '{fmt}': choose coco or yolo")
    root = empty_out_dir(out)
    ann = PoseAnnotations(root, COCO17_SCHEMA, category="person")
    it = range(n)
    if progress:
        from dcvkit.progress import track

        it = track(it, description=f"drawing {n} figure images")
    for i in it:
        image, pose = figure_image(items, cfg, seed, i)
        pose.file = f"images/{pose.file}"
        write_png(root / pose.file, image)
        ann.images.append(pose)
    if fmt == "coco":
        write_coco(ann, root / "annotations.json")
    else:
        write_yolo(ann, root)
    return root, sum(len(im.boxes) for im in ann.images)


__all__ = ["Pose", "FigureConfig", "LIMITS", "PROPORTIONS", "forward_kinematics", "random_pose", "figure_image",
           "write_figures"]
