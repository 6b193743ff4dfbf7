"""Pascal VOC: ``Annotations/X.xml`` (objects with ``name`` and a 1-based inclusive pixel ``bndbox``),
``JPEGImages/`` (any image type), ``SegmentationClass/X.png`` and ``SegmentationObject/X.png`` (palette
PNGs of class and instance ids; 255 marks 'void'), ``ImageSets/Main/default.txt`` (the ids).

VOC boxes count pixels from 1 and include both ends: pixel-edge ``x1, x2`` is ``xmin = x1 + 1``,
``xmax = x2``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dcvkit.data.annotations import AnnotatedImage, Annotations, clean_boxes, palette, safe_path, write_png
from dcvkit.data.folders import UNREADABLE_IMAGE
from dcvkit.errors import DataError
from dcvkit.io import atomic_write


def write(ann: Annotations, root: str | Path, image_set: str = "default") -> Path:
    """XML per image, instance PNGs when the images carry masks, and the image-set list."""
    root = Path(root)
    ids = []
    for im in ann.images:
        stem = Path(im.file).stem
        ids.append(stem)
        a = ET.Element("annotation")
        ET.SubElement(a, "folder").text = str(Path(im.file).parent)
        ET.SubElement(a, "filename").text = Path(im.file).name
        size = ET.SubElement(a, "size")
        for k, v in (("width", im.width), ("height", im.height), ("depth", 3)):
            ET.SubElement(size, k).text = str(v)
        ET.SubElement(a, "segmented").text = "1" if im.masks is not None else "0"
        for (x1, y1, x2, y2), c in zip(im.boxes.tolist(), im.labels.tolist()):
            o = ET.SubElement(a, "object")
            ET.SubElement(o, "name").text = ann.classes[int(c)]
            ET.SubElement(o, "difficult").text = "0"
            bb = ET.SubElement(o, "bndbox")
            for k, v in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
                ET.SubElement(bb, k).text = str(int(round(v)))
        ET.indent(a)
        atomic_write(root / "Annotations" / f"{stem}.xml", ET.tostring(a, encoding="unicode") + "\n")
        if im.masks is not None:
            inst = np.zeros((im.height, im.width), dtype=np.uint8)
            cls = np.zeros((im.height, im.width), dtype=np.uint8)
            for j, (m, c) in enumerate(zip(im.masks.numpy(), im.labels.tolist()), 1):
                inst[m] = j
                cls[m] = int(c) + 1
            write_png(root / "SegmentationObject" / f"{stem}.png", inst, palette())
            write_png(root / "SegmentationClass" / f"{stem}.png", cls, palette())
    atomic_write(root / "ImageSets" / "Main" / f"{image_set}.txt", "".join(i + "\n" for i in ids))
    return root


def read(root: str | Path, classes: list[str] | None = None, image_set: str | None = None,
         masks: bool = True) -> Annotations:
    """Read a VOC folder; ``classes`` fixes the class order (default: names in order of appearance,
    or ``classes.txt`` beside ``Annotations/``)."""
    root = Path(root)
    xml_dir = root / "Annotations"
    if not xml_dir.is_dir():
        raise DataError(f"{root}: no Annotations/ folder (not a Pascal VOC dataset)")
    if image_set:
        lst = root / "ImageSets" / "Main" / f"{image_set}.txt"
        if not lst.is_file():
            raise DataError(f"{lst}: image set '{image_set}' not found")
        files = [xml_dir / f"{i.strip()}.xml" for i in lst.read_text().split() if i.strip()]
    else:
        files = sorted(xml_dir.glob("*.xml"))
    if classes is None and (root / "classes.txt").is_file():
        classes = [c.strip() for c in (root / "classes.txt").read_text().splitlines() if c.strip()]
    fixed = classes is not None
    names: list[str] = list(classes or [])
    out = Annotations(root, names)
    for x in files:
        try:
            a = ET.parse(x).getroot()
        except (OSError, ET.ParseError) as e:
            raise DataError(f"{x}: unreadable VOC XML ({e})") from None
        folder = a.findtext("folder") or "JPEGImages"
        fname = a.findtext("filename") or ""
        rel = f"{folder}/{fname}" if (root / folder / fname).is_file() else f"JPEGImages/{fname}"
        safe_path(root, rel, str(x))
        try:
            w, h = int(a.findtext("size/width") or 0), int(a.findtext("size/height") or 0)
        except ValueError:
            raise DataError(f"{x}: size/width and size/height must be integers") from None
        if w <= 0 or h <= 0:  # no <size>: read it from the image
            from dcvkit.data.annotations import read_image_size

            w, h = read_image_size(safe_path(root, rel, str(x)))
        boxes, labels, entries = [], [], []
        for j, o in enumerate(a.findall("object"), 1):
            name = (o.findtext("name") or "").strip()
            if name not in names:
                if fixed:
                    raise DataError(f"{x}: object {j}: class '{name}' is not among the classes {names}")
                names.append(name)
            try:
                bb = [float(o.findtext(f"bndbox/{k}") or "nan") for k in ("xmin", "ymin", "xmax", "ymax")]
            except ValueError:
                raise DataError(f"{x}: object {j}: bndbox coordinates must be numbers") from None
            boxes.append([bb[0] - 1, bb[1] - 1, bb[2], bb[3]])
            labels.append(names.index(name))
            entries.append(f"object {j} ({name})")
        b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        lab = torch.tensor(labels, dtype=torch.int64)
        m = None
        obj_png = root / "SegmentationObject" / f"{x.stem}.png"
        if masks and obj_png.is_file() and len(b):
            try:
                with Image.open(obj_png) as im:
                    inst = np.array(im)
            except UNREADABLE_IMAGE as e:
                raise DataError(f"{obj_png}: unreadable instance mask ({e})") from None
            m = torch.from_numpy(np.stack([inst == j for j in range(1, len(b) + 1)]))
        b, lab, m = clean_boxes(b, lab, w, h, str(x), m, entries)
        out.images.append(AnnotatedImage(rel, w, h, b, lab, m))
    return out


__all__ = ["read", "write"]
