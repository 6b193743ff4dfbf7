"""YOLO txt labels as Ultralytics reads them: ``images/X.png`` with ``labels/X.txt`` (one line per object:
``class cx cy w h``, normalised to [0, 1]) and a dataset YAML (``path``, ``train``, ``val``, ``names``)."""

from __future__ import annotations

from pathlib import Path

import torch

from dcvkit.config import load_yaml
from dcvkit.data.annotations import AnnotatedImage, Annotations, clean_boxes, read_image_size, safe_path
from dcvkit.data.folders import IMAGE_EXTENSIONS
from dcvkit.errors import DataError
from dcvkit.io import atomic_write, write_yaml


def label_path(image_file: str) -> str:
    """Ultralytics' rule: the last ``images/`` in the path becomes ``labels/``, the suffix ``.txt``."""
    p = Path(image_file)
    parts = list(p.parts)
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        parts[i] = "labels"
    return str(Path(*parts).with_suffix(".txt"))


def write(ann: Annotations, root: str | Path, yaml_name: str = "data.yaml") -> Path:
    """Write one label file per image and the dataset YAML (train and val both name the images folder)."""
    root = Path(root)
    for im in ann.images:
        lines = []
        for (x1, y1, x2, y2), c in zip(im.boxes.tolist(), im.labels.tolist()):
            cx, cy = (x1 + x2) / 2 / im.width, (y1 + y2) / 2 / im.height
            lines.append(f"{int(c)} {cx:.6f} {cy:.6f} {(x2 - x1) / im.width:.6f} {(y2 - y1) / im.height:.6f}")
        atomic_write(root / label_path(im.file), "".join(line + "\n" for line in lines))
    folders = sorted({str(Path(im.file).parent) for im in ann.images}) or ["images"]
    return write_yaml(root / yaml_name, {"path": ".", "train": folders[0], "val": folders[0],
                                         "names": {k: n for k, n in enumerate(ann.classes)}})


def read(yaml_path: str | Path, split: str = "train") -> Annotations:
    """Read the images of ``split`` named by a dataset YAML, with their label files (an image without a
    label file has no objects)."""
    yaml_path = Path(yaml_path)
    spec = load_yaml(yaml_path)
    names = spec.get("names")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or not names:
        raise DataError(f"{yaml_path}: needs 'names' (a list or an id: name mapping)")
    base = yaml_path.parent
    root = safe_path(base, str(spec.get("path", ".")), str(yaml_path))
    if split not in spec:
        raise DataError(f"{yaml_path}: has no '{split}' entry")
    folder = safe_path(root, str(spec[split]), str(yaml_path))
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder named by {yaml_path} ({split}) does not exist")
    out = Annotations(root, list(names))
    for img in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
        rel = str(img.relative_to(root))
        w, h = read_image_size(img)
        lp = root / label_path(rel)
        rows, lines = [], []
        if lp.is_file():
            for n, line in enumerate(lp.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                parts = line.split()
                try:
                    c, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:5])
                except (ValueError, IndexError):
                    raise DataError(f"{lp}:{n}: expected 'class cx cy w h', got {line!r}") from None
                if not 0 <= c < len(names):
                    raise DataError(f"{lp}:{n}: class {c} is not in 0..{len(names) - 1} ({yaml_path} names)")
                rows.append((c, cx, cy, bw, bh))
                lines.append(f"line {n}")
        t = torch.tensor(rows, dtype=torch.float64).reshape(-1, 5)
        boxes = torch.stack([(t[:, 1] - t[:, 3] / 2) * w, (t[:, 2] - t[:, 4] / 2) * h,
                             (t[:, 1] + t[:, 3] / 2) * w, (t[:, 2] + t[:, 4] / 2) * h], 1).float()
        b, lab, _ = clean_boxes(boxes, t[:, 0].long(), w, h, str(lp), entries=lines)
        out.images.append(AnnotatedImage(rel, w, h, b, lab))
    return out


__all__ = ["read", "write", "label_path"]
