"""COCO detection JSON (``annotations.json``: images, annotations with ``bbox`` [x, y, w, h] and
``segmentation``, categories with ids from 1).

Instance masks are written as uncompressed RLE (``{"size": [h, w], "counts": [...]}``, column-major
runs starting with background), which pycocotools and faster-coco-eval read; the reader takes that and
polygons. Compressed RLE strings are refused with a message (decode them with pycocotools first).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from dcvkit.data.annotations import AnnotatedImage, Annotations, clean_boxes, safe_path
from dcvkit.errors import DataError
from dcvkit.io import write_json


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """Uncompressed COCO RLE of a (H, W) bool mask: run lengths in column-major order, zeros first."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def rle_decode(rle: dict[str, Any], where: str) -> np.ndarray:
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, str):
        raise DataError(f"{where}: compressed RLE masks are not read here; convert them with pycocotools "
                        "(mask.decode) or export uncompressed RLE/polygons")
    values = np.zeros(len(counts), dtype=np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, counts)
    if flat.size != h * w:
        raise DataError(f"{where}: RLE counts cover {flat.size} pixels, the mask has {h * w}")
    return flat.reshape((w, h)).T.astype(bool)


def _polygons(polys: list[list[float]], h: int, w: int) -> np.ndarray:
    im = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(im)
    for poly in polys:
        if len(poly) >= 6:
            draw.polygon([(poly[i], poly[i + 1]) for i in range(0, len(poly), 2)], fill=1)
    return np.array(im, dtype=bool)


def write(ann: Annotations, path: str | Path) -> Path:
    """Write ``ann`` as COCO JSON at ``path``; file names are relative to ``ann.root``."""
    images, annotations = [], []
    for i, im in enumerate(ann.images, 1):
        images.append({"id": i, "file_name": im.file, "width": im.width, "height": im.height})
        for j, (box, label) in enumerate(zip(im.boxes.tolist(), im.labels.tolist())):
            x1, y1, x2, y2 = box
            a = {"id": len(annotations) + 1, "image_id": i, "category_id": int(label) + 1,
                 "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0}
            if im.masks is not None:
                m = im.masks[j].numpy()
                a["segmentation"] = rle_encode(m)
                a["area"] = int(m.sum())
            else:
                a["area"] = (x2 - x1) * (y2 - y1)
            annotations.append(a)
    cats = [{"id": k + 1, "name": n, "supercategory": "object"} for k, n in enumerate(ann.classes)]
    return write_json(path, {"images": images, "annotations": annotations, "categories": cats})


def read(path: str | Path, root: str | Path | None = None, masks: bool = True) -> Annotations:
    """Read COCO JSON; image files are looked up under ``root`` (default: the JSON's folder)."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a readable COCO JSON file ({e})") from None
    except RecursionError:  # json nests in C until Python's recursion limit; COCO is 3 levels deep
        raise DataError(f"{path}: JSON nested too deeply to be COCO annotations (images, annotations, "
                        "categories: 3 levels)") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: a COCO file holds one JSON object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: COCO JSON without '{key}'")
    try:
        cats = sorted(data["categories"], key=lambda c: int(c["id"]))
        names = [str(c["name"]) for c in cats]
    except (KeyError, TypeError, ValueError, OverflowError):
        raise DataError(f"{path}: every entry of 'categories' needs an integer 'id' and a 'name'") from None
    cat_index = {int(c["id"]): k for k, c in enumerate(cats)}
    by_image: dict[int, list[dict]] = {}
    for n, a in enumerate(data["annotations"]):
        entry = f"annotation {a.get('id', f'#{n}') if isinstance(a, dict) else f'#{n}'}"
        try:
            bbox = [float(v) for v in a["bbox"]]
            if len(bbox) != 4:
                raise ValueError
            a = {**a, "bbox": bbox, "category_id": int(a["category_id"]), "_entry": entry}
            by_image.setdefault(a["image_id"], []).append(a)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise DataError(f"{path}: {entry}: needs 'image_id', an integer 'category_id' and 'bbox' [x, y, w, h] "
                            "of 4 numbers") from None
        if a["category_id"] not in cat_index:
            raise DataError(f"{path}: {entry}: category_id {a['category_id']} is not in 'categories' "
                            f"(ids {sorted(cat_index)})")
    out = Annotations(root, names)
    for n, im in enumerate(data["images"]):
        try:
            file_name, h, w, image_id = str(im["file_name"]), int(im["height"]), int(im["width"]), im["id"]
        except (KeyError, TypeError, ValueError, OverflowError):
            raise DataError(f"{path}: images entry #{n}: needs 'id', 'file_name', integer 'width' and "
                            "'height'") from None
        safe_path(root, file_name, str(path))
        anns = [a for a in by_image.get(image_id, []) if not a.get("iscrowd", 0)]
        where = f"{path} (image {file_name})"
        boxes = torch.tensor([[x, y, x + bw, y + bh] for x, y, bw, bh in (a["bbox"] for a in anns)],
                             dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([cat_index[a["category_id"]] for a in anns], dtype=torch.int64)
        m = None
        if masks and anns and all("segmentation" in a for a in anns):
            arrs = [rle_decode(a["segmentation"], where) if isinstance(a["segmentation"], dict)
                    else _polygons(a["segmentation"], h, w) for a in anns]
            m = torch.from_numpy(np.stack(arrs))
        boxes, labels, m = clean_boxes(boxes, labels, w, h, where, m, [a["_entry"] for a in anns])
        out.images.append(AnnotatedImage(file_name, w, h, boxes, labels, m))
    return out


__all__ = ["read", "write", "rle_encode", "rle_decode"]
