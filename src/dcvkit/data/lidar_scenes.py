"""Simulated LiDAR scenes: a ground plane, cars, pedestrians and cyclists (and unlabelled poles and walls), a
spinning LiDAR that casts rays at them and a pinhole camera that sees them, with KITTI's labels.

* **Objects**: car-like solids (a body and a cabin), pedestrian-like (legs and a torso), cyclist-like (a
  bicycle and a rider), KITTI's mean sizes with its spread, random positions in the camera's view and random
  headings, never overlapping on the ground; poles and walls are in the way and in no label.
* **The LiDAR** (1.73 m above the ground, like KITTI's): ``beams`` beams from -24.9 to +2 degrees, one ray every
  ``azimuth_step`` degrees across the camera's field of view (KITTI's evaluation, and OpenPCDet's
  ``FOV_POINTS_ONLY``, use only those), a point where a ray first hits a solid or the ground within 70 m,
  range noise, dropped returns and an intensity per surface.
* **The camera**: KITTI's intrinsics and image size; the 2-D box is the projected corners' extent, the
  truncation its share outside the image, the occlusion level from how much of the object's silhouette the
  nearer solids hide (0: < 10 %, 1: < 50 %, 2: more). :func:`render` draws the RGB view (shaded faces, far to
  near).

Every frame is a function of (seed, index): the same arguments give the same frame, so a scene set need not
be stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dcvkit.data.calib import KITTI_IMAGE, Calibration, box_corners, image_boxes, observation_angle
from dcvkit.data.kitti import CLASSES, KittiFrame, Labels

#: (mean l, w, h), (std l, w, h): KITTI's training labels per class
SIZES = {"Car": ((3.88, 1.63, 1.53), (0.43, 0.10, 0.14)),
         "Pedestrian": ((0.84, 0.66, 1.76), (0.23, 0.14, 0.11)),
         "Cyclist": ((1.76, 0.60, 1.74), (0.18, 0.12, 0.09))}
LIDAR_HEIGHT = 1.73
MAX_RANGE = 70.0


@dataclass(frozen=True)
class LidarSceneConfig:
    """What a simulated frame is made of."""

    cars: tuple[int, int] = (2, 8)           # fewest, most per frame
    pedestrians: tuple[int, int] = (1, 5)
    cyclists: tuple[int, int] = (0, 3)
    poles: tuple[int, int] = (0, 4)
    max_distance: float = 38.0               # metres ahead
    beams: int = 32
    azimuth_step: float = 0.2                # degrees
    range_noise: float = 0.02                # metres (std)
    dropout: float = 0.05                    # share of returns lost
    image_size: tuple[int, int] = KITTI_IMAGE


def _parts(cls: str, l: float, w: float, h: float) -> list[tuple[float, float, float, float, float, float]]:
    """The solids an object is made of, in its own frame: (x, y, z of the centre above the ground, l, w, h)."""
    if cls == "Car":
        return [(0, 0, 0.3 * h, l, w, 0.6 * h), (-0.05 * l, 0, 0.8 * h, 0.55 * l, 0.9 * w, 0.4 * h)]
    if cls == "Pedestrian":
        return [(0, 0, 0.25 * h, 0.6 * l, 0.7 * w, 0.5 * h), (0, 0, 0.72 * h, 0.7 * l, w, 0.44 * h)]
    return [(0, 0, 0.3 * h, l, 0.3 * w, 0.6 * h), (-0.1 * l, 0, 0.75 * h, 0.35 * l, w, 0.5 * h)]  # cyclist


def _place(rng: np.random.Generator, cfg: LidarSceneConfig, calib: Calibration
           ) -> tuple[list[str], np.ndarray, list[np.ndarray], list[float]]:
    """Objects and distractors: names, (N, 7) boxes, each one's solids (k, 7) as LiDAR boxes, reflectivity."""
    half_fov = np.arctan(cfg.image_size[0] / 2 / calib.P2[0, 0])
    wanted = [c for c, (lo, hi) in zip(CLASSES, (cfg.cars, cfg.pedestrians, cfg.cyclists))
              for _ in range(rng.integers(lo, hi + 1))]
    names, boxes, solids, refl = [], [], [], []
    taken: list[tuple[float, float, float]] = []
    for cls in wanted:
        mean, std = SIZES[cls]
        l, w, h = np.clip(rng.normal(mean, std), np.array(mean) * 0.7, np.array(mean) * 1.3)
        for _ in range(30):
            dist = rng.uniform(4.0, cfg.max_distance)
            bearing = rng.uniform(-half_fov * 1.05, half_fov * 1.05)
            x, y = dist * np.cos(bearing), dist * np.sin(bearing)
            r = np.hypot(l, w) / 2
            if all(np.hypot(x - a, y - b) > r + c + 0.3 for a, b, c in taken):
                break
        else:
            continue
        taken.append((x, y, r))
        yaw = rng.uniform(-np.pi, np.pi)
        z = -LIDAR_HEIGHT + h / 2
        names.append(cls)
        boxes.append([x, y, z, l, w, h, yaw])
        solids.append(_solids(x, y, yaw, _parts(cls, l, w, h)))
        refl.append(float(rng.uniform(0.2, 0.9)))
    extras = []
    for _ in range(rng.integers(cfg.poles[0], cfg.poles[1] + 1)):  # poles: thin, tall, unlabelled
        for _ in range(30):
            x, y = rng.uniform(5, cfg.max_distance), rng.uniform(-cfg.max_distance / 2, cfg.max_distance / 2)
            if all(np.hypot(x - a, y - b) > c + 0.6 for a, b, c in taken):
                break
        else:
            continue
        taken.append((x, y, 0.3))
        extras.append((_solids(x, y, 0.0, [(0, 0, 2.0, 0.25, 0.25, 4.0)]), 0.6))
    side = rng.choice([-1, 1])  # a wall along one side of the road, far enough to leave the objects free
    free = max([abs(b) + c for a, b, c in taken if b * side > 0] or [8.0])
    wall_y = side * (free + rng.uniform(1.0, 4.0))
    extras.append((_solids(cfg.max_distance / 2 + 10, wall_y, 0.0, [(0, 0, 1.5, 70.0, 0.3, 3.0)]), 0.4))
    for s, r in extras:
        solids.append(s)
        refl.append(r)
    return names, np.array(boxes, np.float64).reshape(-1, 7), solids, refl


def _solids(x: float, y: float, yaw: float, parts: list[tuple[float, ...]]) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    out = [[x + c * px - s * py, y + s * px + c * py, -LIDAR_HEIGHT + pz, pl, pw, ph, yaw]
           for px, py, pz, pl, pw, ph in parts]
    return np.array(out, np.float64)


def ray_cast(origins: np.ndarray, dirs: np.ndarray, solids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First hit of each ray ((R, 3) origin, unit direction) on (S, 7) boxes or on the ground (z =
    -LIDAR_HEIGHT): (R,) distance (inf: none) and (R,) index of the solid hit (-1: the ground, -2: nothing).
    The slab method in each box's frame, all rays against all boxes at once."""
    r = len(dirs)
    t_best = np.full(r, np.inf)
    hit = np.full(r, -2, np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        tg = (-LIDAR_HEIGHT - origins[:, 2]) / dirs[:, 2]
    ground = (dirs[:, 2] < 0) & (tg > 0)
    t_best[ground], hit[ground] = tg[ground], -1
    if len(solids):
        c, s = np.cos(-solids[:, 6]), np.sin(-solids[:, 6])
        o = origins[:, None, :] - solids[None, :, :3]                       # (R, S, 3)
        ox, oy = c * o[..., 0] - s * o[..., 1], s * o[..., 0] + c * o[..., 1]
        dx = c * dirs[:, None, 0] - s * dirs[:, None, 1]
        dy = s * dirs[:, None, 0] + c * dirs[:, None, 1]
        lo, hi = np.full((r, len(solids)), -np.inf), np.full((r, len(solids)), np.inf)
        for oo, dd, half in ((ox, dx, solids[:, 3] / 2), (oy, dy, solids[:, 4] / 2),
                             (o[..., 2], np.broadcast_to(dirs[:, None, 2], o[..., 2].shape), solids[:, 5] / 2)):
            with np.errstate(divide="ignore", invalid="ignore"):
                t1, t2 = (-half - oo) / dd, (half - oo) / dd
            parallel = np.abs(dd) < 1e-12
            t1 = np.where(parallel, np.where(np.abs(oo) <= half, -np.inf, np.inf), t1)
            t2 = np.where(parallel, np.where(np.abs(oo) <= half, np.inf, -np.inf), t2)
            lo, hi = np.maximum(lo, np.minimum(t1, t2)), np.minimum(hi, np.maximum(t1, t2))
        t = np.where((hi >= lo) & (lo > 0), lo, np.inf)
        j = t.argmin(1)
        tj = t[np.arange(r), j]
        closer = tj < t_best
        t_best[closer], hit[closer] = tj[closer], j[closer]
    return t_best, hit


def scan(rng: np.random.Generator, solids: np.ndarray, refl: np.ndarray, cfg: LidarSceneConfig,
         half_fov: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) points x y z intensity of one sweep over the camera's field of view, and (N,) the solid each
    point is on (-1: the ground)."""
    elev = np.deg2rad(np.linspace(-24.9, 2.0, cfg.beams))
    az = np.deg2rad(np.arange(-np.rad2deg(half_fov) - 2, np.rad2deg(half_fov) + 2, cfg.azimuth_step))
    e, a = np.meshgrid(elev, az, indexing="ij")
    dirs = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
    t, hit = ray_cast(np.zeros_like(dirs), dirs, solids)
    keep = (t < MAX_RANGE) & (rng.random(len(t)) >= cfg.dropout)
    t, hit, dirs = t[keep], hit[keep], dirs[keep]
    t = t + rng.normal(0, cfg.range_noise, len(t))
    pts = dirs * t[:, None]
    base = np.where(hit >= 0, refl[np.maximum(hit, 0)], 0.15)
    intensity = np.clip(base + rng.normal(0, 0.05, len(t)), 0, 1)
    return np.column_stack([pts, intensity]).astype(np.float32), hit


def paint_order(groups: list[np.ndarray]) -> list[int]:
    """The order a painter draws the groups of solids in: the wall (the last group: beyond every object on its
    side of the road, so it hides none) first, then the compact ones far to near."""
    dist = [float(np.hypot(*g[:, :2].mean(0))) for g in groups[:-1]]
    return [len(groups) - 1, *np.argsort(dist)[::-1].tolist()] if groups else []


def _silhouettes(solid_groups: list[np.ndarray], calib: Calibration, size: tuple[int, int], scale: int = 4
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Each group's pixels seen alone and seen among the others (painted far to near) at 1/``scale`` of the
    image: (G,) own areas, (G,) visible areas."""
    import cv2

    w, h = size[0] // scale, size[1] // scale
    ids = np.full((h, w), -1, np.int32)
    own = np.zeros(len(solid_groups))
    hulls = []
    for g in solid_groups:
        pts = []
        for box in g:
            uv, depth = calib.lidar_to_image(box_corners(box[None])[0])
            pts.append(uv[depth > 0.1] / scale)
        hull = cv2.convexHull(np.concatenate(pts).astype(np.float32)) if sum(len(p) for p in pts) >= 3 else None
        hulls.append(hull)
    for k in paint_order(solid_groups):
        if hulls[k] is None:
            continue
        alone = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(alone, np.round(hulls[k]).astype(np.int32), 1)
        own[k] = alone.sum()
        ids[alone > 0] = k
    visible = np.bincount(ids[ids >= 0].ravel(), minlength=len(solid_groups)).astype(np.float64)
    return own, visible


def lidar_frame(index: int, seed: int = 0, cfg: LidarSceneConfig = LidarSceneConfig()) -> KittiFrame:
    """Frame ``index`` of the scene set ``seed``: points, calibration and KITTI labels (LiDAR boxes)."""
    rng = np.random.default_rng([seed, index])
    calib = Calibration.simulated(cfg.image_size)
    half_fov = float(np.arctan(cfg.image_size[0] / 2 / calib.P2[0, 0]))
    names, boxes, solids, refl = _place(rng, cfg, calib)
    flat = np.concatenate(solids) if solids else np.zeros((0, 7))
    owner = np.concatenate([np.full(len(s), k) for k, s in enumerate(solids)]) if solids else np.zeros(0, np.int64)
    refl_flat = np.array([refl[k] for k in owner]) if len(owner) else np.zeros(0)
    points, _ = scan(rng, flat, refl_flat, cfg, half_fov)
    n = len(names)
    bbox, trunc = image_boxes(boxes, calib, cfg.image_size)
    own, visible = _silhouettes(solids, calib, cfg.image_size)
    hidden = 1 - np.divide(visible[:n], own[:n], out=np.zeros(n), where=own[:n] > 0)
    occluded = np.where(own[:n] == 0, 3, np.digitize(hidden, [0.1, 0.5])).astype(np.int64)
    labels = Labels(names, np.round(trunc, 2), occluded, observation_angle(boxes), bbox, boxes)
    keep = (trunc < 0.95) & (bbox[:, 3] - bbox[:, 1] > 1)  # objects the camera sees at all
    return KittiFrame(f"{index:06d}", points, calib, labels.select(keep), None, cfg.image_size, seed)


def render(frame: KittiFrame, seed: int | None = None, cfg: LidarSceneConfig = LidarSceneConfig()) -> np.ndarray:
    """The camera's RGB view of a simulated frame (H, W, 3) uint8: sky, ground, each object's solids with
    their faces shaded by the light, painted far to near (poles and walls too); ``seed``: its scene set
    (default: the frame's own)."""
    import cv2

    seed = frame.scene_seed if seed is None else seed
    if seed is None:
        raise ValueError(f"frame {frame.id} is not a simulated frame: it has no scene seed to render")
    rng = np.random.default_rng([seed, int(frame.id)])
    calib = frame.calib
    names, boxes, solids, refl = _place(rng, cfg, calib)
    w, h = cfg.image_size
    img = np.zeros((h, w, 3), np.uint8)
    horizon = calib.lidar_to_image(np.array([[1000.0, 0, -LIDAR_HEIGHT]]))[0][0, 1]
    rows = np.arange(h)[:, None, None]
    sky = np.array([200, 215, 235]) - rows * 0.2
    ground = np.array([95, 95, 90]) + (rows - horizon) * 0.15
    img[:] = np.where(rows < horizon, sky, ground).clip(0, 255).astype(np.uint8)
    colours = {"Car": (170, 40, 40), "Pedestrian": (40, 90, 160), "Cyclist": (60, 150, 60)}
    light = np.array([0.4, 0.3, 0.85]) / np.linalg.norm([0.4, 0.3, 0.85])
    faces = [(0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)]
    for k in paint_order(solids):
        base = np.array(colours.get(names[k], (120, 120, 120)) if k < len(names) else (130, 125, 120), np.float64)
        base = base * (0.7 + 0.6 * refl[k])
        for box in sorted(solids[k], key=lambda b: -np.hypot(b[0], b[1])):
            corners = box_corners(box[None])[0]
            centre = corners.mean(0)
            for f in faces:
                quad = corners[list(f)]
                normal = np.cross(quad[1] - quad[0], quad[2] - quad[0])
                normal /= np.linalg.norm(normal) + 1e-12
                if np.dot(normal, quad.mean(0) - centre) < 0:
                    normal = -normal
                if np.dot(normal, quad.mean(0)) >= 0:  # facing away from the sensor
                    continue
                uv, depth = calib.lidar_to_image(quad)
                if (depth <= 0.1).any():
                    continue
                shade = 0.45 + 0.55 * max(0.0, float(np.dot(normal, light)))
                colour = tuple(float(v) for v in (base * shade).clip(0, 255))
                cv2.fillConvexPoly(img, np.round(uv).astype(np.int32), colour, lineType=cv2.LINE_AA)
    return img


__all__ = ["LidarSceneConfig", "lidar_frame", "render", "ray_cast", "scan", "SIZES", "LIDAR_HEIGHT"]
