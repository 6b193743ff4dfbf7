"""Scene graphs in a Visual-Genome-like JSON: read (any such file, custom classes and predicates) and written.

The file dcvkit writes (``dcv data scenegraphs``) and reads::

    {"classes": ["T-shirt/top", ...], "predicates": ["left of", ...],        # optional: else from the entries
     "images": [{"image_id": 0, "file_name": "images/000000.png", "width": 128, "height": 128,
                 "objects": [{"object_id": 1, "x": 10, "y": 12, "w": 30, "h": 28, "names": ["Sneaker"]}],
                 "relationships": [{"relationship_id": 1, "subject_id": 1, "predicate": "left of",
                                    "object_id": 2}]}]}

Visual Genome's own ``scene_graphs.json`` (a list of such images, without ``file_name``: the image is
``<image_id>.jpg`` beside the file or under ``images/``; ``subject``/``object`` as objects with an
``object_id``) reads too. Boxes are ``x, y, w, h`` in pixels (VG's convention); in memory they are
``x1, y1, x2, y2``. Every entry is checked: a relationship naming an object id that the image does not have,
a predicate missing from the file's ``predicates``, a box outside its image are one-line errors naming the
file and the entry.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dcvkit.errors import DataError

#: a box may pass its image's edge by this many pixels (rounding in other tools' files) before it is refused
EDGE_TOLERANCE = 1.0


@dataclass
class GraphImage:
    """One image's objects and relations: boxes (n, 4) x1 y1 x2 y2 in pixels, labels (n,) class indices,
    relations (m, 3) subject index, object index, predicate index (indices into this image's objects)."""

    file: str
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    relations: np.ndarray


@dataclass
class GraphAnnotations:
    """A scene-graph dataset: images relative to ``root``, its classes and predicates."""

    root: Path
    classes: list[str]
    predicates: list[str]
    images: list[GraphImage] = field(default_factory=list)

    @property
    def relations(self) -> int:
        return sum(len(im.relations) for im in self.images)


def _where(path: Path, i: int, entry: dict) -> str:
    return f"{path}: images[{i}] (image_id {entry.get('image_id', '?')})"


def _id(v: Any) -> Any:
    """An object id as given (an int or a string), None for anything else."""
    if isinstance(v, dict):
        v = v.get("object_id")
    return v if isinstance(v, (int, str)) and not isinstance(v, bool) else None


def _name(obj: dict) -> Any:
    names = obj.get("names", obj.get("name"))
    return names[0] if isinstance(names, list) and names else names


def _list(v: Any, what: str, where: str) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise DataError(f"{where}: '{what}' must be a list, got {type(v).__name__}")
    return v


def _vocabulary(doc: Any, key: str, path: Path) -> list[str]:
    v = _list(doc.get(key) if isinstance(doc, dict) else None, key, str(path))
    if not all(isinstance(x, str) and x for x in v) or len(set(v)) != len(v):
        raise DataError(f"{path}: '{key}' must list distinct non-empty names")
    return list(v)


def _image_file(path: Path, entry: dict, where: str) -> str:
    if "file_name" in entry:
        if not isinstance(entry["file_name"], str) or not entry["file_name"]:
            raise DataError(f"{where}: 'file_name' must be a path (a string)")
        return entry["file_name"]
    for cand in (f"images/{entry.get('image_id')}.jpg", f"{entry.get('image_id')}.jpg"):
        if (path.parent / cand).is_file():
            return cand
    return f"images/{entry.get('image_id')}.jpg"


def _size(entry: dict, file: Path, where: str) -> tuple[int, int]:
    w, h = entry.get("width"), entry.get("height")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v >= 1 for v in (w, h)):
        return int(w), int(h)
    if w is not None or h is not None:
        raise DataError(f"{where}: width and height must be positive numbers of pixels, got {w!r} x {h!r}")
    return _size_of(file, where)


def _box(obj: dict, width: int, height: int, where: str) -> list[float]:
    try:
        x, y, w, h = (float(obj[k]) for k in ("x", "y", "w", "h"))
    except (KeyError, TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: needs numeric x, y, w, h (pixels)") from None
    if not all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
        raise DataError(f"{where}: box x={x:g} y={y:g} w={w:g} h={h:g} must be finite with w, h > 0")
    t = EDGE_TOLERANCE
    if x < -t or y < -t or x + w > width + t or y + h > height + t:
        raise DataError(f"{where} (object_id {obj.get('object_id')}): box x={x:g} y={y:g} w={w:g} h={h:g} leaves "
                        f"the {width}x{height} image; fix the box or the image's size")
    return [max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h)]


def read(path: str | os.PathLike) -> GraphAnnotations:
    """A VG-like scene-graph JSON (see the module docstring), every entry checked."""
    from dcvkit.data.annotations import safe_path

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such scene-graph file (give a Visual-Genome-like .json; dcv data scenegraphs "
                        "writes one)")
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e}); give a Visual-Genome-like scene-graph file") from None
    entries = doc.get("images") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected a list of images or an object with 'images'")
    given_classes, given_predicates = _vocabulary(doc, "classes", path), _vocabulary(doc, "predicates", path)
    classes, predicates = list(given_classes), list(given_predicates)
    images: list[GraphImage] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DataError(f"{path}: images[{i}] is not an object")
        where = _where(path, i, entry)
        file = _image_file(path, entry, where)
        full = safe_path(path.parent, file, where)  # a path from a data file never leaves the file's folder
        width, height = _size(entry, full, where)
        ids: dict[Any, int] = {}
        boxes, labels = [], []
        for j, obj in enumerate(_list(entry.get("objects"), "objects", where)):
            w_obj = f"{where} objects[{j}]"
            if not isinstance(obj, dict):
                raise DataError(f"{w_obj}: not an object")
            box = _box(obj, width, height, w_obj)
            name = _name(obj)
            if not isinstance(name, str) or not name:
                raise DataError(f"{w_obj}: needs a class name ('names': [name])")
            if name not in classes:
                if given_classes:
                    raise DataError(f"{w_obj}: class '{name}' is not in the file's classes "
                                    f"({', '.join(given_classes[:12])})")
                classes.append(name)
            oid = _id(obj.get("object_id", j))
            if oid is None:
                raise DataError(f"{w_obj}: object_id must be a number or a string")
            if oid in ids:
                raise DataError(f"{w_obj}: object_id {oid} appears twice in this image")
            ids[oid] = len(boxes)
            boxes.append(box)
            labels.append(classes.index(name))
        rels = []
        for j, rel in enumerate(_list(entry.get("relationships"), "relationships", where)):
            w_rel = f"{where} relationships[{j}]"
            if not isinstance(rel, dict):
                raise DataError(f"{w_rel}: not an object")
            pair = []
            for key in ("subject", "object"):
                oid = _id(rel.get(f"{key}_id", rel.get(key)))
                if oid not in ids:
                    raise DataError(f"{w_rel}: {key}_id {oid} is not an object of this image (its object_ids: "
                                    f"{', '.join(map(str, list(ids)[:12])) or 'none'})")
                pair.append(ids[oid])
            pred = rel.get("predicate")
            if not isinstance(pred, str) or not pred.strip():
                raise DataError(f"{w_rel}: needs a predicate (a string)")
            pred = pred if given_predicates else pred.strip().lower()
            if pred not in predicates:
                if given_predicates:
                    raise DataError(f"{w_rel}: unknown predicate '{pred}'; the file's predicates are "
                                    f"{', '.join(given_predicates)}")
                predicates.append(pred)
            if pair[0] == pair[1]:
                raise DataError(f"{w_rel}: subject and object are the same object")
            rels.append([pair[0], pair[1], predicates.index(pred)])
        images.append(GraphImage(file, width, height, np.asarray(boxes, np.float64).reshape(-1, 4),
                                 np.asarray(labels, np.int64), np.asarray(rels, np.int64).reshape(-1, 3)))
    if not images:
        raise DataError(f"{path}: lists no images")
    if not predicates:
        raise DataError(f"{path}: no relationships and no predicates: nothing to learn relations from")
    return GraphAnnotations(path.parent, classes, predicates, images)


def _size_of(file: Path, where: str) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(file) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError):
        raise DataError(f"{where}: no width/height and its image {file} cannot be read") from None


def write(ann: GraphAnnotations, path: str | os.PathLike, info: dict[str, Any] | None = None) -> Path:
    """``ann`` as a VG-like JSON file (object ids from 1 per image, relationship ids from 1 per file)."""
    from dcvkit.io import atomic_write

    rid = 0
    images = []
    for k, im in enumerate(ann.images):
        objects = [{"object_id": j + 1, "names": [ann.classes[int(c)]], "x": round(float(b[0]), 2),
                    "y": round(float(b[1]), 2), "w": round(float(b[2] - b[0]), 2), "h": round(float(b[3] - b[1]), 2)}
                   for j, (b, c) in enumerate(zip(im.boxes, im.labels))]
        rels = []
        for s, o, p in im.relations.tolist():
            rid += 1
            rels.append({"relationship_id": rid, "subject_id": s + 1, "predicate": ann.predicates[p],
                         "object_id": o + 1})
        images.append({"image_id": k, "file_name": im.file, "width": im.width, "height": im.height,
                       "objects": objects, "relationships": rels})
    doc = {"info": info or {}, "classes": ann.classes, "predicates": ann.predicates, "images": images}
    path = Path(path)
    atomic_write(path, json.dumps(doc))
    return path


__all__ = ["GraphImage", "GraphAnnotations", "read", "write", "EDGE_TOLERANCE"]
