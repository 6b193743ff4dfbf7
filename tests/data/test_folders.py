"""Image folders: both layouts, split folders, corrupt files, and streaming equal to in-memory."""

from __future__ import annotations

import pytest
import torch

from conftest import CLASSES, write_png_folder
from dcvkit.data import ImageFiles, ImageTensors, load_dataset
from dcvkit.errors import DataError


def test_class_subfolders_in_memory(png_folder):
    splits = load_dataset(png_folder, val_split=0.25)
    assert isinstance(splits.train, ImageTensors)
    assert splits.classes == CLASSES and splits.channels == 1 and splits.img_size == (28, 28)
    assert len(splits.train) + len(splits.val) == 48 and splits.test is None


def test_class_in_file_name(tmp_path):
    root = write_png_folder(tmp_path / "flat", layout="names")
    splits = load_dataset(root, val_split=0)
    assert splits.classes == ["class0", "class1", "class2", "class3"]
    # labels follow the names: every image of class k has its bar in band k (rows 7k+1 .. 7k+5)
    for img, y in zip(splits.train.images, splits.train.labels):
        assert img[0, 7 * int(y) + 3, 14] == 220


def test_split_folders_and_resize(tmp_path):
    write_png_folder(tmp_path / "ds" / "train")
    write_png_folder(tmp_path / "ds" / "test", per_class=3, size=40)
    splits = load_dataset(tmp_path / "ds", val_split=0.25, img_size=32, channels=3)
    assert splits.img_size == (32, 32) and splits.channels == 3
    assert len(splits.test) == 12 and splits.test.img_size == (32, 32)


def test_unreadable_image_is_named_or_skipped(png_folder):
    bad = png_folder / "c1" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(DataError, match=r"broken\.png: unreadable image.*--skip-bad"):
        load_dataset(png_folder)
    with pytest.warns(UserWarning, match="broken.png"):
        splits = load_dataset(png_folder, skip_bad=True, val_split=0)
    assert len(splits.train) == 48


def test_streaming_matches_in_memory(png_folder):
    mem = load_dataset(png_folder, val_split=0)
    stream = load_dataset(png_folder, val_split=0, max_memory_mb=0)
    assert isinstance(stream.train, ImageFiles)
    a = list(mem.train.loader(10, shuffle=True, seed=1))
    b = list(stream.train.loader(10, shuffle=True, seed=1, workers=0))
    assert len(a) == len(b) == 5
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_streaming_reports_bad_file_from_worker(png_folder):
    (png_folder / "c2" / "zz.png").write_bytes(b"nope")
    files = load_dataset(png_folder, val_split=0, max_memory_mb=0, skip_bad=False).train
    with pytest.raises(DataError, match=r"zz\.png: unreadable image"):
        list(files.loader(8, shuffle=False, workers=1))


def test_empty_folder_and_non_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DataError, match="no such folder and not a named dataset"):
        load_dataset(tmp_path / "nothing-here")
