"""The KITTI object layout, read and written: ``velodyne/*.bin`` (float32 x y z intensity), ``label_2/*.txt``
(one object per line), ``calib/*.txt`` (P0-P3, R0_rect, Tr_velo_to_cam, ...), ``image_2/*.png``.

A label line (15 fields; 16 with a detection's score)::

    type truncated occluded alpha  x1 y1 x2 y2  h w l  x y z  rotation_y  [score]

with the 2-D box in pixels, h w l in metres, x y z the bottom centre of the box in the rectified camera
frame and rotation_y about camera y (:mod:`dcvkit.data.calib` converts). Every reader checks what it reads and
names the file and line of the first thing wrong; a frame's box arrays are LiDAR boxes (x y z centre, l w h,
yaw) from here on.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dcvkit.data.calib import Calibration, camera_to_lidar_boxes, lidar_to_camera_boxes
from dcvkit.errors import DataError
from dcvkit.io import atomic_write

#: the classes dcvkit detects, and the neighbouring classes KITTI's evaluation neither counts nor penalises
CLASSES = ("Car", "Pedestrian", "Cyclist")
NEIGHBOURS = {"Car": "Van", "Pedestrian": "Person_sitting"}
LABEL_FIELDS = 15
CALIB_KEYS = {"P2": 12, "R0_rect": 9, "Tr_velo_to_cam": 12}


@dataclass
class Labels:
    """The objects of one frame, as the label file lists them (``boxes``: LiDAR boxes, converted)."""

    names: list[str]
    truncated: np.ndarray        # (N,) 0..1
    occluded: np.ndarray         # (N,) 0 visible, 1 partly, 2 largely occluded, 3 unknown
    alpha: np.ndarray            # (N,) observation angle
    bbox: np.ndarray             # (N, 4) x1 y1 x2 y2 in pixels
    boxes: np.ndarray            # (N, 7) LiDAR boxes x y z l w h yaw
    scores: np.ndarray | None = None  # (N,) detections' scores (a results file)

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def empty(cls) -> "Labels":
        return cls([], np.zeros(0), np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 4)), np.zeros((0, 7)))

    def select(self, keep: np.ndarray) -> "Labels":
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, np.int64)
        return Labels([self.names[i] for i in idx], self.truncated[idx], self.occluded[idx], self.alpha[idx],
                      self.bbox[idx], self.boxes[idx], None if self.scores is None else self.scores[idx])


def read_velodyne(path: str | os.PathLike) -> np.ndarray:
    """(N, 4) float32 x y z intensity; a file that is not whole points, or holds NaN or infinite values, is a
    one-line error naming the file and the first bad point."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the point cloud ({e.strerror or e})") from None
    if len(raw) % 16:
        raise DataError(f"{path}: {len(raw)} bytes is not a whole number of points (16 bytes each: float32 x y z "
                        "intensity); the file is truncated or not a KITTI velodyne .bin")
    pts = np.frombuffer(raw, dtype="<f4").reshape(-1, 4)
    bad = ~np.isfinite(pts).all(1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: point {i} is {pts[i].tolist()} ({int(bad.sum())} points hold NaN or infinite "
                        "values); remove them before training")
    return pts.copy()


def write_velodyne(path: str | os.PathLike, points: np.ndarray) -> None:
    atomic_write(path, np.ascontiguousarray(points, dtype="<f4").reshape(-1, 4).tobytes())


def read_calib(path: str | os.PathLike) -> Calibration:
    """A KITTI calibration file (``KEY: v1 v2 ...`` per line); P2, R0_rect and Tr_velo_to_cam are required
    (``R0_rect`` may be called ``R_rect``, ``Tr_velo_to_cam`` ``Tr_velo_cam``)."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise DataError(f"{path}: cannot read the calibration ({e.strerror or e})") from None
    found: dict[str, np.ndarray] = {}
    alias = {"R_rect": "R0_rect", "Tr_velo_cam": "Tr_velo_to_cam"}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        key = alias.get(key.strip(), key.strip())
        if not sep:
            raise DataError(f"{path}:{n}: '{line[:40]}' is not 'KEY: numbers'")
        if key not in CALIB_KEYS:
            continue
        try:
            values = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            raise DataError(f"{path}:{n}: {key} holds something that is not a number") from None
        if len(values) != CALIB_KEYS[key] or not np.isfinite(values).all():
            raise DataError(f"{path}:{n}: {key} must be {CALIB_KEYS[key]} finite numbers, got {len(values)}")
        found[key] = values
    missing = [k for k in CALIB_KEYS if k not in found]
    if missing:
        raise DataError(f"{path}: no {', '.join(missing)} line; a KITTI calibration file lists P2, R0_rect and "
                        "Tr_velo_to_cam")
    calib = Calibration(found["P2"].reshape(3, 4), found["R0_rect"].reshape(3, 3),
                        found["Tr_velo_to_cam"].reshape(3, 4))
    if abs(np.linalg.det(calib.R0_rect)) < 1e-6 or abs(np.linalg.det(calib.Tr_velo_to_cam[:, :3])) < 1e-6:
        raise DataError(f"{path}: R0_rect or the rotation of Tr_velo_to_cam is singular; not a calibration")
    return calib


def write_calib(path: str | os.PathLike, calib: Calibration) -> None:
    def row(name: str, m: np.ndarray) -> str:
        return f"{name}: " + " ".join(f"{v:.12e}" for v in np.asarray(m).reshape(-1))

    lines = [row(f"P{i}", calib.P2) for i in range(4)]
    lines[2] = row("P2", calib.P2)
    lines += [row("R0_rect", calib.R0_rect), row("Tr_velo_to_cam", calib.Tr_velo_to_cam),
              row("Tr_imu_to_velo", np.eye(3, 4))]
    atomic_write(path, "\n".join(lines) + "\n")


def read_labels(path: str | os.PathLike, calib: Calibration, keep_dontcare: bool = False) -> Labels:
    """A label_2 file (or a results file, with a 16th field: the score); ``DontCare`` regions are dropped
    unless asked for."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise DataError(f"{path}: cannot read the labels ({e.strerror or e})") from None
    names, rows, scores = [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (LABEL_FIELDS, LABEL_FIELDS + 1):
            raise DataError(f"{path}:{n}: {len(parts)} fields; a KITTI label line has {LABEL_FIELDS} (type truncated "
                            "occluded alpha x1 y1 x2 y2 h w l x y z rotation_y) and a result line a 16th, the score")
        try:
            values = [float(v) for v in parts[1:]]
        except ValueError:
            raise DataError(f"{path}:{n}: fields 2 to {len(parts)} must be numbers ('{line[:60]}')") from None
        if not all(math.isfinite(v) for v in values):
            raise DataError(f"{path}:{n}: a field is NaN or infinite")
        if parts[0] == "DontCare" and not keep_dontcare:
            continue
        h, w, l = values[7:10]
        if min(h, w, l) <= 0 and parts[0] != "DontCare":
            raise DataError(f"{path}:{n}: the box's h w l ({h} {w} {l}) must be positive")
        if int(values[1]) not in (0, 1, 2, 3) and values[1] != -1:
            raise DataError(f"{path}:{n}: occluded must be 0, 1, 2 or 3, got {values[1]:g}")
        names.append(parts[0])
        rows.append(values[:14])
        scores.append(values[14] if len(values) == 15 else math.nan)
    if not rows:
        return Labels.empty()
    a = np.array(rows, dtype=np.float64)
    boxes = camera_to_lidar_boxes(a[:, 7:10], a[:, 10:13], a[:, 13], calib)
    s = np.array(scores)
    return Labels(names, a[:, 0].clip(0, 1), a[:, 1].astype(np.int64), a[:, 2], a[:, 3:7], boxes,
                  None if np.isnan(s).all() else np.nan_to_num(s, nan=1.0))


def label_lines(labels: Labels, calib: Calibration) -> list[str]:
    """The label file's lines of ``labels`` (a 16th field, the score, when it has scores)."""
    hwl, bottom, ry = lidar_to_camera_boxes(labels.boxes, calib)
    lines = []
    for i, name in enumerate(labels.names):
        f = [f"{labels.truncated[i]:.2f}", str(int(labels.occluded[i])), f"{labels.alpha[i]:.4f}",
             *(f"{v:.2f}" for v in labels.bbox[i]), *(f"{v:.4f}" for v in hwl[i]), *(f"{v:.4f}" for v in bottom[i]),
             f"{ry[i]:.4f}"]
        if labels.scores is not None:
            f.append(f"{labels.scores[i]:.4f}")
        lines.append(" ".join([name, *f]))
    return lines


def write_labels(path: str | os.PathLike, labels: Labels, calib: Calibration) -> None:
    atomic_write(path, "".join(line + "\n" for line in label_lines(labels, calib)))


@dataclass
class KittiFrame:
    """One frame: its points, calibration, labels (None: not annotated) and camera image file, if any."""

    id: str
    points: np.ndarray
    calib: Calibration
    labels: Labels | None
    image: Path | None = None
    image_size: tuple[int, int] = (1242, 375)
    scene_seed: int | None = None   # a simulated frame's scene set (lidar_scenes.render draws its camera view)


@dataclass
class KittiFolder:
    """A KITTI-layout folder (``velodyne/``, ``calib/``, ``label_2/`` optional, ``image_2/`` optional, or the
    same under ``training/``), its frames read when asked for (the point clouds never all in memory)."""

    root: Path
    ids: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, root: str | os.PathLike) -> "KittiFolder":
        root = Path(root)
        if (root / "training" / "velodyne").is_dir() and not (root / "velodyne").is_dir():
            root = root / "training"
        velo = root / "velodyne"
        if not velo.is_dir():
            raise DataError(f"{root}: no velodyne/ folder; a KITTI-layout folder holds velodyne/*.bin, calib/*.txt "
                            "and label_2/*.txt (dcv data lidar --out DIR writes one)")
        ids = sorted(p.stem for p in velo.glob("*.bin"))
        if not ids:
            raise DataError(f"{velo}: no .bin point clouds")
        for i in ids:
            if not (root / "calib" / f"{i}.txt").is_file():
                raise DataError(f"{root / 'calib' / (i + '.txt')}: missing; every velodyne/{i}.bin needs its "
                                "calibration")
        return cls(root, ids)

    @property
    def labelled(self) -> bool:
        return (self.root / "label_2").is_dir()

    def __len__(self) -> int:
        return len(self.ids)

    def frame(self, i: int) -> KittiFrame:
        fid = self.ids[i]
        calib = read_calib(self.root / "calib" / f"{fid}.txt")
        label = self.root / "label_2" / f"{fid}.txt"
        labels = read_labels(label, calib) if label.is_file() else None
        if labels is None and self.labelled:
            raise DataError(f"{label}: missing; label_2/ must hold a file per frame (an empty one: no objects)")
        image = next((p for p in (self.root / "image_2" / f"{fid}{e}" for e in (".png", ".jpg")) if p.is_file()),
                     None)
        size = (1242, 375)
        if image is not None:
            from dcvkit.data.annotations import read_image_size

            size = read_image_size(image)
        return KittiFrame(fid, read_velodyne(self.root / "velodyne" / f"{fid}.bin"), calib, labels, image, size)


def write_frame(root: str | os.PathLike, frame: KittiFrame, image: np.ndarray | None = None) -> None:
    """One frame into a KITTI-layout folder: velodyne, calib, label_2 (when labelled) and image_2 (when given)."""
    root = Path(root)
    write_velodyne(root / "velodyne" / f"{frame.id}.bin", frame.points)
    write_calib(root / "calib" / f"{frame.id}.txt", frame.calib)
    if frame.labels is not None:
        write_labels(root / "label_2" / f"{frame.id}.txt", frame.labels, frame.calib)
    if image is not None:
        from dcvkit.data.annotations import write_png

        write_png(root / "image_2" / f"{frame.id}.png", image)


__all__ = ["Labels", "KittiFrame", "KittiFolder", "read_velodyne", "write_velodyne", "read_calib", "write_calib",
           "read_labels", "write_labels", "label_lines", "write_frame", "CLASSES", "NEIGHBOURS"]
