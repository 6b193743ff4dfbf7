"""COCO <-> YOLO <-> VOC: conversions keep every box and label (property test), and bad annotation files
give one-line errors naming the file and the entry."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import assert_one_line_error, run
from dcvkit.data import coco
from dcvkit.data.annotations import AnnotatedImage, Annotations
from dcvkit.data.detection import convert, detection_files, read_annotations, to_tensors
from dcvkit.errors import DataError

NAMES = ["shirt", "bag", "boot", "sandal"]


@st.composite
def datasets(draw):
    """1-4 images of 8-64 px with 0-4 whole-pixel boxes each (VOC stores whole pixels) and labels."""
    images = []
    for i in range(draw(st.integers(1, 4))):
        w, h = draw(st.integers(8, 64)), draw(st.integers(8, 64))
        boxes, labels = [], []
        for _ in range(draw(st.integers(0, 4))):
            x1, y1 = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
            x2, y2 = draw(st.integers(x1 + 1, w)), draw(st.integers(y1 + 1, h))
            boxes.append([x1, y1, x2, y2])
            labels.append(draw(st.integers(0, len(NAMES) - 1)))
        images.append((f"img{i}.png", w, h, boxes, labels))
    return images


def write_coco(root: Path, images) -> Path:
    ann = Annotations(root, list(NAMES))
    for name, w, h, boxes, labels in images:
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((h, w, 3), dtype=np.uint8)).save(root / "images" / name)
        ann.images.append(AnnotatedImage(f"images/{name}", w, h, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                         torch.tensor(labels, dtype=torch.int64)))
    return coco.write(ann, root / "annotations.json")


def _by_name(ann: Annotations) -> dict[str, list[tuple[list[float], str]]]:
    """Per image file: its (box rounded to 1e-3 px, class name) pairs, sorted."""
    return {Path(im.file).name: sorted(([round(v, 3) + 0.0 for v in b], ann.classes[int(c)])
                                       for b, c in zip(im.boxes.tolist(), im.labels.tolist()))
            for im in ann.images}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_coco_yolo_voc_round_trip_keeps_every_box_and_label(images):
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        src = write_coco(t / "coco", images)
        original = _by_name(coco.read(src))
        _, yolo_yaml = convert(src, t / "yolo", "yolo")
        assert _by_name(read_annotations(yolo_yaml)) == original
        convert(yolo_yaml, t / "voc", "voc")
        assert _by_name(read_annotations(t / "voc")) == original
        _, back = convert(t / "voc", t / "coco2", "coco")
        final = read_annotations(back)
        assert _by_name(final) == original
        assert final.classes == NAMES
        assert len(final.images) == len(images)  # images without objects are kept


def test_convert_cli_and_tensors(tmp_path, capsys):
    src = write_coco(tmp_path / "c", [("a.png", 40, 30, [[1, 2, 11, 12]], [2]), ("b.png", 20, 20, [], [])])
    code, out, _ = run(capsys, "data", "convert", str(src), "--to", "voc", "--out", str(tmp_path / "v"))
    assert code == 0 and "2 images (1 objects, 4 classes)" in out
    data = to_tensors(detection_files(read_annotations(tmp_path / "v"), img_size=60))
    assert data.images.shape == (2, 3, 60, 60)
    # letterboxed: 40x30 scaled by 1.5 to 60x45, centred (7 rows of padding above); boxes move with it
    assert data.boxes[0].tolist() == [[1.5, 10.0, 16.5, 25.0]]
    assert data.original_boxes()[0].tolist() == [[1.0, 2.0, 11.0, 12.0]]
    assert data.labels[0].tolist() == [2] and len(data.boxes[1]) == 0
    code, _, err = run(capsys, "data", "convert", str(src), "--to", "yolo", "--out", str(tmp_path / "v"))
    assert_one_line_error(code, err, "already exists and is not empty")


# --- bad input: one line naming the file and the entry, exit 2 ---------------------------------------------


def _coco(tmp_path: Path, **changes) -> Path:
    root = tmp_path / "bad"
    src = write_coco(root, [("a.png", 40, 30, [[1, 2, 11, 12], [5, 5, 20, 20]], [0, 1])])
    data = json.loads(src.read_text())
    for key, value in changes.items():
        if key == "annotation":
            data["annotations"][1].update(value)
        elif key == "image":
            data["images"][0].update(value)
    src.write_text(json.dumps(data))
    return src


@pytest.mark.parametrize("case, fragments", [
    ("not json", ["annotations.json", "not a readable COCO JSON file"]),
    ({"annotation": {"category_id": 9}}, ["annotations.json", "annotation 2", "category_id 9 is not in 'categories'"]),
    ({"annotation": {"bbox": [1, 2, "x"]}}, ["annotations.json", "annotation 2", "bbox"]),
    ({"image": {"file_name": "../../etc/passwd"}}, ["annotations.json", "outside the dataset folder"]),
    ({"image": {"file_name": "images/missing.png"}}, ["missing.png", "image file missing"]),
])
def test_bad_coco(tmp_path, capsys, case, fragments):
    if case == "not json":
        src = _coco(tmp_path)
        src.write_text('{"images": [')
    else:
        src = _coco(tmp_path, **case)
    code, _, err = run(capsys, "detect", "train", "--data", str(src), "--epochs", "1", "--no-progress")
    assert_one_line_error(code, err, *fragments)


def _yolo(tmp_path: Path, label_text: str) -> Path:
    root = tmp_path / "y"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(root / "images" / "a.png")
    (root / "labels" / "a.txt").write_text(label_text)
    (root / "data.yaml").write_text("path: .\ntrain: images\nval: images\nnames: [shirt, bag]\n")
    return root / "data.yaml"


@pytest.mark.parametrize("text, fragments", [
    ("0 0.5 0.5 0.2 0.2\n1 0.5 oops 0.2\n", ["a.txt:2", "expected 'class cx cy w h'"]),
    ("0 0.5 0.5 0.2 0.2\n\n7 0.5 0.5 0.2 0.2\n", ["a.txt:3", "class 7 is not in 0..1"]),
    ("0 0.5 0.5 0.2 0.2\n1 nan 0.5 0.2 0.2\n", ["a.txt", "line 2", "not finite"]),
])
def test_bad_yolo(tmp_path, capsys, text, fragments):
    code, _, err = run(capsys, "data", "convert", str(_yolo(tmp_path, text)), "--to", "coco", "--out",
                       str(tmp_path / "o"))
    assert_one_line_error(code, err, *fragments)


def test_bad_voc(tmp_path, capsys):
    src = write_coco(tmp_path / "c", [("a.png", 40, 30, [[1, 2, 11, 12]], [0])])
    convert(src, tmp_path / "v", "voc")
    xml = tmp_path / "v" / "Annotations" / "a.xml"
    good = xml.read_text()
    xml.write_text(good.replace("<name>shirt</name>", "<name>hat</name>"))
    code, _, err = run(capsys, "data", "convert", str(tmp_path / "v"), "--to", "coco", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "a.xml", "object 1", "class 'hat' is not among the classes")
    xml.write_text(good[:60])
    code, _, err = run(capsys, "data", "convert", str(tmp_path / "v"), "--to", "coco", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "a.xml", "unreadable VOC XML")


def test_boxes_outside_the_image_are_named_and_dropped(tmp_path):
    src = _coco(tmp_path, annotation={"bbox": [50, 50, 10, 10]})   # wholly right of / below the 40x30 image
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ann = coco.read(src)
    msg = " ".join(str(w.message) for w in caught)
    assert "annotations.json" in msg and "annotation 2" in msg and "dropped 1 degenerate box" in msg
    assert ann.images[0].boxes.tolist() == [[1.0, 2.0, 11.0, 12.0]]
    clipped = coco.read(_coco(tmp_path / "2", annotation={"bbox": [30, 20, 30, 30]}))
    assert clipped.images[0].boxes[1].tolist() == [30.0, 20.0, 40.0, 30.0] and torch.isfinite(clipped.images[0].boxes).all()


def test_unknown_format_is_named(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="unknown annotation file type"):
        read_annotations(tmp_path / "x.txt")
    with pytest.raises(DataError, match="not a detection dataset"):
        read_annotations(tmp_path)
