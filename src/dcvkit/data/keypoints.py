"""Keypoint annotations: the schema of a keypoint set (names, skeleton, left/right flip index, OKS sigmas),
and the two formats pose datasets come in.

* **COCO person_keypoints JSON**: each category lists ``keypoints`` (names) and ``skeleton`` (1-based
  pairs); each annotation holds ``keypoints`` [x1, y1, v1, x2, ...] (3 numbers per keypoint; v 0 = not
  labelled, 1 = labelled but hidden, 2 = visible), ``num_keypoints``, ``bbox`` [x, y, w, h] and ``area``.
  dcvkit also writes (and reads) each category's ``sigmas`` and ``flip_idx``, which COCO keeps in its
  evaluation code; a file without them gets COCO's 17 sigmas when it has COCO's 17 keypoints, else a
  uniform 0.0625 with a warning, and a flip index matched from ``left_``/``right_`` names.
* **YOLO-pose** (Ultralytics): ``labels/X.txt`` lines ``class cx cy w h x1 y1 v1 ...`` normalised to [0, 1],
  and a data YAML with ``kpt_shape: [K, 3]`` and ``flip_idx``.

Conventions: keypoints are (n, K, 3) float arrays ``x, y, v`` in pixels (continuous: pixel ``i`` covers
``[i, i + 1)``), boxes ``x1 y1 x2 y2``. Every reader names the file and the entry of what is wrong: a
keypoints array of the wrong length, a visibility outside 0-2, a skeleton edge naming a missing keypoint, a
flip index that is not a permutation or that does not swap a left keypoint with its right.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dcvkit.data.annotations import read_image_size, safe_path
from dcvkit.data.folders import IMAGE_EXTENSIONS
from dcvkit.errors import DataError
from dcvkit.io import atomic_write, write_yaml

#: COCO's 17 person keypoints, their skeleton (0-based), flip index and OKS sigmas (pycocotools' values)
COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
          "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
          "right_knee", "left_ankle", "right_ankle")
COCO17_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
                   (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
COCO17_FLIP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
COCO17_SIGMAS = (0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087,
                 0.087, 0.089, 0.089)
DEFAULT_SIGMA = 0.0625  # COCO's mean sigma, for keypoint sets that give none


@dataclass(frozen=True)
class KeypointSchema:
    """A keypoint set: names, skeleton edges (0-based index pairs), flip index (the keypoint each one
    becomes under a horizontal flip) and OKS sigmas (per-keypoint spread, a fraction of the object's scale)."""

    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    flip_idx: tuple[int, ...] = ()
    sigmas: tuple[float, ...] = ()

    def __len__(self) -> int:
        return len(self.names)

    def check(self, where: str) -> "KeypointSchema":
        """Refuse what would silently ruin training or evaluation (see the module docstring)."""
        k = len(self.names)
        if k == 0:
            raise DataError(f"{where}: a keypoint set needs at least one keypoint name")
        for a, b in self.skeleton:
            if not (0 <= a < k and 0 <= b < k):
                raise DataError(f"{where}: skeleton edge [{a + 1}, {b + 1}] names a keypoint that does not exist "
                                f"(there are {k}, numbered 1 to {k} as COCO's skeleton counts them)")
        f = list(self.flip_idx)
        if sorted(f) != list(range(k)):
            raise DataError(f"{where}: flip_idx {f} is not a permutation of 0..{k - 1}; each keypoint must map to "
                            "exactly one keypoint under a horizontal flip")
        if any(f[f[i]] != i for i in range(k)):
            i = next(i for i in range(k) if f[f[i]] != i)
            raise DataError(f"{where}: flip_idx maps {self.names[i]} to {self.names[f[i]]} but that one not back; "
                            "a flip swaps pairs")
        for i, name in enumerate(self.names):
            for side, other in (("left", "right"), ("right", "left")):
                mirror = _swap_side(name, side, other)
                if mirror is not None and mirror in self.names and self.names[f[i]] != mirror:
                    raise DataError(f"{where}: flip_idx maps {name} to {self.names[f[i]]}; a horizontal flip turns "
                                    f"{name} into {mirror}")
        if len(self.sigmas) != k or not all(math.isfinite(s) and s > 0 for s in self.sigmas):
            raise DataError(f"{where}: need {k} positive OKS sigmas, one per keypoint, got {list(self.sigmas)}")
        return self

    def to_coco_category(self, cat_id: int = 1, name: str = "person") -> dict[str, Any]:
        return {"id": cat_id, "name": name, "supercategory": name, "keypoints": list(self.names),
                "skeleton": [[a + 1, b + 1] for a, b in self.skeleton], "sigmas": list(self.sigmas),
                "flip_idx": list(self.flip_idx)}


def _swap_side(name: str, side: str, other: str) -> str | None:
    for sep in ("_", " ", "-"):
        if name.startswith(side + sep):
            return other + name[len(side):]
        if name.endswith(sep + side):
            return name[: -len(side)] + other
    return None


def matched_flip(names: Sequence[str]) -> tuple[int, ...]:
    """The flip index that names imply: ``left_x`` <-> ``right_x``, every other keypoint to itself."""
    index = {n: i for i, n in enumerate(names)}
    out = []
    for i, n in enumerate(names):
        mirror = _swap_side(n, "left", "right") or _swap_side(n, "right", "left")
        out.append(index.get(mirror, i) if mirror else i)
    return tuple(out)


COCO17_SCHEMA = KeypointSchema(COCO17, COCO17_SKELETON, COCO17_FLIP, COCO17_SIGMAS)


def default_sigmas(names: Sequence[str], where: str) -> tuple[float, ...]:
    if tuple(names) == COCO17:
        return COCO17_SIGMAS
    warnings.warn(f"{where}: no OKS sigmas for these {len(names)} keypoints; using {DEFAULT_SIGMA} for each (COCO's "
                  "mean). Give 'sigmas' in the category for an OKS that means what COCO's does", stacklevel=3)
    return (DEFAULT_SIGMA,) * len(names)


def flip_keypoints(keypoints: np.ndarray, width: float, flip_idx: Sequence[int]) -> np.ndarray:
    """Keypoints (n, K, 3) of an image of ``width`` flipped left-right: x -> width - x, and each keypoint
    moved to its mirror's slot (a person's left wrist becomes the right wrist of the mirrored image)."""
    k = np.array(keypoints, dtype=np.float64, copy=True)
    labelled = k[..., 2] > 0
    k[..., 0] = np.where(labelled, width - k[..., 0], k[..., 0])
    return k[:, list(flip_idx)]


@dataclass
class PoseImage:
    """One image's people (or figures): boxes (n, 4) x1 y1 x2 y2, keypoints (n, K, 3), areas (n,)."""

    file: str
    width: int
    height: int
    boxes: np.ndarray
    keypoints: np.ndarray
    areas: np.ndarray


@dataclass
class PoseAnnotations:
    """A pose dataset: its root folder, keypoint schema, category name and images."""

    root: Path
    schema: KeypointSchema
    images: list[PoseImage] = field(default_factory=list)
    category: str = "person"

    def __len__(self) -> int:
        return len(self.images)


def _numbers(v: Any) -> list[float] | None:
    if not isinstance(v, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return None
    return [float(x) for x in v]


def check_keypoints(values: list[float], k: int, where: str) -> np.ndarray:
    """A flat COCO keypoints list -> (K, 3), refusing a wrong length, non-finite numbers and flags outside 0-2."""
    if len(values) != 3 * k:
        raise DataError(f"{where}: keypoints has {len(values)} numbers; {k} keypoints need {3 * k} (x, y, v each)")
    a = np.array(values, dtype=np.float64).reshape(k, 3)
    if not np.isfinite(a).all():
        raise DataError(f"{where}: keypoints hold a number that is not finite")
    bad = [int(i) for i in np.nonzero(~np.isin(a[:, 2], (0, 1, 2)))[0]]
    if bad:
        raise DataError(f"{where}: keypoint {bad[0] + 1} has visibility {a[bad[0], 2]:g}; v must be 0 (not labelled), "
                        "1 (labelled, hidden) or 2 (visible)")
    return a


def read_coco(path: str | Path, root: str | Path | None = None) -> PoseAnnotations:
    """A COCO person_keypoints JSON (any number of keypoints; one keypoint category)."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        why = str(e)[:120] or type(e).__name__
        raise DataError(f"{path}: not a readable COCO keypoints JSON file ({why})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations",
                                                                                        "categories")):
        raise DataError(f"{path}: a COCO keypoints file holds images, annotations and categories (lists)")
    cats = [c for c in data["categories"] if isinstance(c, dict) and "keypoints" in c]
    if len(cats) != 1:
        raise DataError(f"{path}: needs exactly one category with 'keypoints' (names), found {len(cats)}")
    cat = cats[0]
    names = cat.get("keypoints")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DataError(f"{path}: category '{cat.get('name')}': 'keypoints' must be a list of names")
    where = f"{path}: category '{cat.get('name')}'"
    try:
        skeleton = tuple((int(a) - 1, int(b) - 1) for a, b in cat.get("skeleton", []))
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: 'skeleton' must be a list of [a, b] keypoint numbers (from 1)") from None
    sigmas = _numbers(cat["sigmas"]) if "sigmas" in cat else None
    if "sigmas" in cat and sigmas is None:
        raise DataError(f"{where}: 'sigmas' must be a list of numbers")
    flip = cat.get("flip_idx")
    if flip is not None and (not isinstance(flip, list) or not all(isinstance(i, int) for i in flip)):
        raise DataError(f"{where}: 'flip_idx' must be a list of keypoint indices (from 0)")
    schema = KeypointSchema(tuple(names), skeleton, tuple(flip) if flip is not None else matched_flip(names),
                            tuple(sigmas) if sigmas is not None else default_sigmas(names, where)).check(where)
    try:
        cat_id = int(cat["id"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{where}: needs an integer 'id'") from None
    by_image: dict[Any, list[tuple[np.ndarray, np.ndarray, float]]] = {}
    for n, a in enumerate(data["annotations"]):
        entry = f"{path}: annotation {a.get('id', f'#{n}') if isinstance(a, dict) else f'#{n}'}"
        if not isinstance(a, dict) or a.get("category_id") != cat_id or a.get("iscrowd", 0):
            continue
        kp = _numbers(a.get("keypoints"))
        bbox = _numbers(a.get("bbox"))
        if kp is None or bbox is None or len(bbox) != 4 or not isinstance(a.get("image_id"), (int, str)):
            raise DataError(f"{entry}: needs 'image_id', 'keypoints' [x, y, v, ...] and 'bbox' [x, y, w, h]")
        k = check_keypoints(kp, len(names), entry)
        x, y, w, h = bbox
        if not all(math.isfinite(v) for v in bbox) or w < 0 or h < 0:
            raise DataError(f"{entry}: bbox {bbox} must be 4 finite numbers with w, h >= 0")
        area = a.get("area", w * h)
        area = float(area) if isinstance(area, (int, float)) and math.isfinite(area) and area >= 0 else w * h
        by_image.setdefault(a["image_id"], []).append((np.array([x, y, x + w, y + h]), k, area))
    out = PoseAnnotations(root, schema, category=str(cat.get("name", "person")))
    for n, im in enumerate(data["images"]):
        try:
            file_name, h, w, image_id = str(im["file_name"]), int(im["height"]), int(im["width"]), im["id"]
            hash(image_id)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise DataError(f"{path}: images entry #{n}: needs 'id', 'file_name', integer 'width' and "
                            "'height'") from None
        safe_path(root, file_name, str(path))
        objs = by_image.get(image_id, [])
        out.images.append(PoseImage(file_name, w, h, np.array([o[0] for o in objs]).reshape(-1, 4),
                                    np.array([o[1] for o in objs]).reshape(-1, len(names), 3),
                                    np.array([o[2] for o in objs], dtype=np.float64)))
    return out


def coco_dict(ann: PoseAnnotations) -> dict[str, Any]:
    """The dataset as a COCO person_keypoints dict (ids from 1)."""
    images, anns = [], []
    for i, im in enumerate(ann.images, 1):
        images.append({"id": i, "file_name": im.file, "width": im.width, "height": im.height})
        for b, k, area in zip(im.boxes.tolist(), im.keypoints, im.areas.tolist()):
            kk = np.where(k[:, 2:3] > 0, k, 0.0)  # COCO writes 0, 0, 0 for an unlabelled keypoint
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 0,
                         "bbox": [round(b[0], 2), round(b[1], 2), round(b[2] - b[0], 2), round(b[3] - b[1], 2)],
                         "area": round(float(area), 2), "num_keypoints": int((k[:, 2] > 0).sum()),
                         "keypoints": [round(float(v), 2) if j % 3 < 2 else int(v)
                                       for j, v in enumerate(kk.reshape(-1))]})
    return {"images": images, "annotations": anns, "categories": [ann.schema.to_coco_category(1, ann.category)]}


def write_coco(ann: PoseAnnotations, path: str | Path) -> Path:
    return atomic_write(Path(path), json.dumps(coco_dict(ann)))


# --- YOLO-pose ---------------------------------------------------------------------------------------------


def write_yolo(ann: PoseAnnotations, root: str | Path, yaml_name: str = "data.yaml") -> Path:
    """Ultralytics' pose layout: one label file per image, the data YAML with kpt_shape and flip_idx (and
    dcvkit's own kpt_names, skeleton and sigmas, which Ultralytics ignores)."""
    from dcvkit.data.yolo import label_path

    root = Path(root)
    for im in ann.images:
        lines = []
        for (x1, y1, x2, y2), k in zip(im.boxes.tolist(), im.keypoints):
            box = [(x1 + x2) / 2 / im.width, (y1 + y2) / 2 / im.height, (x2 - x1) / im.width, (y2 - y1) / im.height]
            parts = ["0", *(f"{v:.6f}" for v in box)]
            for x, y, v in k.tolist():
                parts += [f"{x / im.width:.6f}", f"{y / im.height:.6f}", str(int(v))] if v > 0 else ["0", "0", "0"]
            lines.append(" ".join(parts))
        atomic_write(root / label_path(im.file), "".join(line + "\n" for line in lines))
    folders = sorted({str(Path(im.file).parent) for im in ann.images}) or ["images"]
    s = ann.schema
    return write_yaml(root / yaml_name, {"path": ".", "train": folders[0], "val": folders[0],
                                         "names": {0: ann.category}, "kpt_shape": [len(s), 3],
                                         "flip_idx": list(s.flip_idx), "kpt_names": list(s.names),
                                         "skeleton": [list(e) for e in s.skeleton], "sigmas": list(s.sigmas)})


def read_yolo(yaml_path: str | Path, split: str = "train") -> PoseAnnotations:
    """An Ultralytics pose dataset (``kpt_shape: [K, 2 or 3]``, ``flip_idx``); areas are box areas."""
    from dcvkit.config import load_yaml
    from dcvkit.data.yolo import label_path

    yaml_path = Path(yaml_path)
    spec = load_yaml(yaml_path)
    shape = spec.get("kpt_shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) for v in shape)
            and shape[0] >= 1 and shape[1] in (2, 3)):
        raise DataError(f"{yaml_path}: a pose dataset needs kpt_shape: [K, 2] or [K, 3], got {shape!r}")
    k, dims = shape
    names = spec.get("kpt_names") or [f"kpt{i}" for i in range(k)]
    if not isinstance(names, list) or len(names) != k:
        raise DataError(f"{yaml_path}: kpt_names must list {k} names (kpt_shape says {k} keypoints)")
    names = [str(n) for n in names]
    flip = spec.get("flip_idx", list(matched_flip(names)))
    if not isinstance(flip, list) or not all(isinstance(i, int) for i in flip):
        raise DataError(f"{yaml_path}: flip_idx must be a list of {k} keypoint indices (from 0)")
    sigmas = spec.get("sigmas")
    if sigmas is not None and _numbers(sigmas) is None:
        raise DataError(f"{yaml_path}: sigmas must be a list of numbers")
    try:
        skeleton = tuple((int(a), int(b)) for a, b in spec.get("skeleton", []))
    except (TypeError, ValueError):
        raise DataError(f"{yaml_path}: skeleton must be a list of [a, b] keypoint indices (from 0)") from None
    schema = KeypointSchema(tuple(names), skeleton, tuple(flip),
                            tuple(_numbers(sigmas)) if sigmas is not None else default_sigmas(names, str(yaml_path)))
    schema.check(str(yaml_path))
    base = yaml_path.parent
    root = safe_path(base, str(spec.get("path", ".")), str(yaml_path))
    if split not in spec:
        raise DataError(f"{yaml_path}: has no '{split}' entry")
    folder = safe_path(root, str(spec[split]), str(yaml_path))
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder named by {yaml_path} ({split}) does not exist")
    category = spec.get("names")
    category = (category[0] if isinstance(category, list) and category else
                next(iter(category.values()), "person") if isinstance(category, dict) else "person")
    category = str(category)
    out = PoseAnnotations(root, schema, category=category)
    for img in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
        rel = str(img.relative_to(root))
        w, h = read_image_size(img)
        lp = root / label_path(rel)
        boxes, kps = [], []
        if lp.is_file():
            for n, line in enumerate(lp.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    vals = [float(v) for v in line.split()]
                except ValueError:
                    raise DataError(f"{lp}:{n}: not a number among {line.strip()[:80]!r}") from None
                if len(vals) != 5 + k * dims:
                    raise DataError(f"{lp}:{n}: {len(vals)} numbers; 'class cx cy w h' and {k} keypoints of {dims} "
                                    f"need {5 + k * dims} ({yaml_path} kpt_shape)")
                cx, cy, bw, bh = vals[1:5]
                kp = np.array(vals[5:]).reshape(k, dims)
                if dims == 2:
                    kp = np.concatenate([kp, np.where((kp > 0).any(1, keepdims=True), 2.0, 0.0)], 1)
                kp = check_keypoints((kp * [w, h, 1]).reshape(-1).tolist(), k, f"{lp}:{n}")
                boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
                kps.append(kp)
        b = np.array(boxes, dtype=np.float64).reshape(-1, 4)
        out.images.append(PoseImage(rel, w, h, b, np.array(kps).reshape(-1, k, 3),
                                    (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))
    return out


def read_pose(path: str | Path, split: str = "train") -> PoseAnnotations:
    """A COCO keypoints JSON or a YOLO-pose data YAML."""
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        return read_yolo(p, split)
    if p.suffix.lower() == ".json":
        return read_coco(p)
    raise DataError(f"{p}: not a pose dataset (a COCO keypoints .json or a YOLO-pose data .yaml)")


__all__ = ["KeypointSchema", "COCO17", "COCO17_SKELETON", "COCO17_FLIP", "COCO17_SIGMAS", "COCO17_SCHEMA",
           "PoseImage", "PoseAnnotations", "flip_keypoints", "matched_flip", "check_keypoints", "read_coco",
           "write_coco", "coco_dict", "read_yolo", "write_yolo", "read_pose"]
