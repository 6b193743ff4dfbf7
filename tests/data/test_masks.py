"""Segmentation folders (images/ + masks/ + classes.yaml): reading, and one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from conftest import assert_one_line_error, run, write_mask_pairs as write_pairs
from dcvkit.data.masks import IGNORE, load_mask_folder, load_segmentation


def test_reads_ids_and_names(tmp_path):
    root = write_pairs(tmp_path / "d", classes=["background", "left", "right"])
    data = load_mask_folder(root)
    assert data.classes == ["background", "left", "right"]
    assert data.images.shape == (6, 3, 24, 24) and data.masks.shape == (6, 24, 24)
    assert set(data.masks.unique().tolist()) == {0, 1, 2, IGNORE}
    assert data.class_pixels()[1] == 3 * 64


def test_rgb_masks_through_the_palette(tmp_path):
    a = load_mask_folder(write_pairs(tmp_path / "ids", classes=["bg", "l", "r"]))
    b = load_mask_folder(write_pairs(tmp_path / "rgb", classes=["bg", "l", "r"], rgb=True))
    assert torch.equal(a.masks, b.masks)


def test_classes_default_to_the_ids_seen(tmp_path):
    data = load_mask_folder(write_pairs(tmp_path / "d"))
    assert data.classes == ["0", "1", "2"]


def test_train_val_test_subfolders(tmp_path):
    for split in ("train", "test"):
        write_pairs(tmp_path / "d" / split, classes=["bg", "l", "r"])
    splits = load_segmentation(tmp_path / "d", val_split=0.5)
    assert len(splits.train) == 3 and len(splits.val) == 3 and len(splits.test) == 6
    assert splits.classes == ["bg", "l", "r"]


def _train(capsys, root):
    return run(capsys, "segment", "train", "--data", str(root), "--epochs", "1", "--base", "4", "--depth", "2",
               "--no-progress", "--no-tensorboard")


def test_wrong_mask_size_is_a_one_line_error(tmp_path, capsys):
    root = write_pairs(tmp_path / "d", classes=["bg", "l", "r"])
    Image.fromarray(np.zeros((20, 24), dtype=np.uint8)).save(root / "masks" / "003.png")
    code, _, err = _train(capsys, root)
    assert_one_line_error(code, err, "003.png", "20", "must have their image's size")


def test_id_outside_the_classes_is_a_one_line_error(tmp_path, capsys):
    root = write_pairs(tmp_path / "d", classes=["bg", "l", "r"])
    bad = np.zeros((24, 24), dtype=np.uint8)
    bad[5, 5] = 7
    Image.fromarray(bad).save(root / "masks" / "002.png")
    code, _, err = _train(capsys, root)
    assert_one_line_error(code, err, "002.png", "class id 7", "classes.yaml")


def test_missing_mask_is_a_one_line_error(tmp_path, capsys):
    root = write_pairs(tmp_path / "d", classes=["bg", "l", "r"])
    (root / "masks" / "004.png").unlink()
    code, _, err = _train(capsys, root)
    assert_one_line_error(code, err, "004.png", "no mask file")


def test_colour_outside_the_palette_is_a_one_line_error(tmp_path, capsys):
    root = write_pairs(tmp_path / "d", classes=["bg", "l", "r"], rgb=True)
    m = np.array(Image.open(root / "masks" / "001.png"))
    m[3, 3] = (9, 99, 199)
    Image.fromarray(m).save(root / "masks" / "001.png")
    code, _, err = _train(capsys, root)
    assert_one_line_error(code, err, "001.png", "(9, 99, 199)", "palette")


def test_not_a_segmentation_folder(tmp_path, capsys, png_folder):
    code, _, err = _train(capsys, png_folder)
    assert_one_line_error(code, err, "needs masks")
