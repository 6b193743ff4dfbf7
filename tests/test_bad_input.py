"""The rows of docs/errors.md's bad-input table that no other test file covers: each case through the CLI,
one line naming the file (and the line or entry), exit code 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import assert_one_line_error, quick_args, run, write_mask_pairs, write_png_folder


def _coco(tmp_path: Path, images: list, annotations: list) -> Path:
    root = tmp_path / "c"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((30, 40, 3), dtype=np.uint8)).save(root / "images" / "a.png")
    (root / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "shirt"}]}))
    return root / "annotations.json"


A_PNG = {"id": 1, "file_name": "images/a.png", "width": 40, "height": 30}


def test_nan_box_in_coco_names_the_annotation(tmp_path, capsys):
    src = _coco(tmp_path, [A_PNG], [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 2, float("nan"), 4]}])
    code, _, err = run(capsys, "data", "convert", str(src), "--to", "yolo", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "annotations.json", "annotation 5", "not finite")


def test_coco_without_images_is_an_empty_dataset(tmp_path, capsys):
    src = _coco(tmp_path, [], [])
    code, _, err = run(capsys, "detect", "train", "--data", str(src), "--epochs", "1", "--no-progress")
    assert_one_line_error(code, err, str(src.parent), "the annotations list no images")


def test_nan_and_infinite_options(capsys):
    code, _, err = run(capsys, "classify", "train", "--lr", "nan")
    assert_one_line_error(code, err, "--lr must be a finite number")
    code, _, err = run(capsys, "classify", "train", "--epochs", "1e999")
    assert_one_line_error(code, err, "--epochs must be int")


def test_unknown_option_is_one_line_with_a_suggestion(capsys):
    code, _, err = run(capsys, "classify", "train", "--lrr", "0.1")
    assert_one_line_error(code, err, "unrecognized arguments: --lrr", "did you mean --lr?")
    code, _, err = run(capsys, "classify", "train", "--scheduler", "warp")
    assert_one_line_error(code, err, "invalid choice: 'warp'", "dcv classify train --help")
    code, _, err = run(capsys, "clasify", "train")
    assert_one_line_error(code, err, "invalid choice: 'clasify'", "did you mean classify?")


def test_images_of_the_wrong_shape_for_the_model(idx_dir, tmp_path, capsys):
    code, _, _ = run(capsys, "classify", "train", "--data", "fashion-mnist", "--data-dir", str(idx_dir),
                     *quick_args("--epochs", "1", "--limit", "100"))
    assert code == 0
    rgb = write_png_folder(tmp_path / "rgb32", per_class=2, size=32)  # 28x28 grey model, 32x32 colour data
    for p in rgb.rglob("*.png"):
        Image.open(p).convert("RGB").save(p)
    code, _, err = run(capsys, "classify", "val", "runs/classify/exp", "--data", str(rgb), "--split", "train")
    assert_one_line_error(code, err, "rgb32 (train): images are (3, 32, 32)", "runs/classify/exp expects", "--img-size")


def test_decompression_bomb_is_refused(png_folder, monkeypatch, capsys):
    """An image whose header claims more pixels than PIL's limit (a decompression bomb) is named, not
    decoded; the limit is lowered here so a 64x64 file stands for a 200-megapixel one."""
    from PIL import Image as PILImage

    bomb = next(png_folder.rglob("*.png")).with_name("bomb.png")
    PILImage.new("L", (64, 64)).save(bomb)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)  # 28x28 files pass; 64x64 is over twice the limit
    code, _, err = run(capsys, "classify", "train", "--data", str(png_folder), *quick_args())
    assert_one_line_error(code, err, "bomb.png: unreadable image", "decompression bomb")


def test_corrupt_mask_png(tmp_path, capsys):
    data = write_mask_pairs(tmp_path / "seg", n=4, size=24)
    victim = sorted((data / "masks").iterdir())[1]
    victim.write_bytes(victim.read_bytes()[:40])  # truncated
    code, _, err = run(capsys, "segment", "train", "--data", str(data), "--epochs", "1", "--no-progress")
    assert_one_line_error(code, err, victim.name, "unreadable image")
