"""Class selection (--classes), per-class subsets (--per-class) and the moving Fashion-MNIST clips."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dcvkit.cli.main import main
from dcvkit.data import load_dataset
from dcvkit.data.core import ImageTensors, parse_classes, per_class_subset, select_classes
from dcvkit.data.sequences import MOTIONS, moving_clips
from dcvkit.errors import DataError

NAMES = ["a", "b", "c", "d", "e"]


def test_parse_classes_ranges_lists_and_names():
    assert parse_classes("0-2", NAMES) == [0, 1, 2]
    assert parse_classes("4,1", NAMES) == [4, 1]
    assert parse_classes("e, b", NAMES) == [4, 1]
    for bad in ("7", "x", "1,1", ""):
        with pytest.raises(DataError, match="--classes"):
            parse_classes(bad, NAMES)


def test_select_relabels_in_the_given_order(tiny_tensors):
    sub = select_classes(tiny_tensors, [3, 1])
    assert sub.classes == ["c3", "c1"] and set(sub.labels.tolist()) == {0, 1}
    assert (sub.labels == 0).sum() == (tiny_tensors.labels == 3).sum()


def test_per_class_subset_is_balanced_and_seeded(tiny_tensors):
    a, b = per_class_subset(tiny_tensors, 5, seed=0), per_class_subset(tiny_tensors, 5, seed=0)
    assert a.labels.bincount().tolist() == [5, 5, 5, 5] and torch.equal(a.images, b.images)
    assert not torch.equal(a.images, per_class_subset(tiny_tensors, 5, seed=1).images)


def test_load_dataset_with_classes_and_per_class(idx_dir):
    s = load_dataset("fashion-mnist", data_dir=idx_dir, classes="5-9", per_class=10, val_split=0.2)
    assert s.classes[0] == "Sandal" and len(s.train) + len(s.val) == 50
    assert set(s.test.labels.tolist()) <= set(range(5)) and len(s.test) == (torch.arange(200) % 10 >= 5).sum()


def test_class_selection_on_folders(png_folder):
    s = load_dataset(png_folder, classes="c0,c2", val_split=0)
    assert s.classes == ["c0", "c2"] and len(s.train) == 24


def test_moving_clips_shape_motion_and_determinism(tiny_tensors):
    clips, motion = moving_clips(tiny_tensors.images[:60], frames=6, size=36, seed=3)
    assert clips.shape == (60, 6, 1, 36, 36) and clips.dtype == torch.uint8
    assert motion.bincount(minlength=6).tolist() == [10] * 6 and len(MOTIONS) == 6
    again, _ = moving_clips(tiny_tensors.images[:60], frames=6, size=36, seed=3)
    assert torch.equal(clips, again)
    # the item moves: first and last frames differ, and a right slide moves the mass to the right
    assert (clips[:, 0].float() - clips[:, -1].float()).abs().mean() > 1
    right = clips[motion == 0].float()
    xs = torch.arange(36).float()
    centre = lambda f: (f.sum(-2) * xs).sum(-1) / f.sum((-2, -1))  # noqa: E731
    assert (centre(right[:, -1]) > centre(right[:, 0])).all()


def test_moving_fashion_mnist_dataset_and_lrcn_trains(idx_dir, capsys):
    s = load_dataset("moving-fashion-mnist", data_dir=idx_dir, val_split=0.1)
    assert s.train.frames == 8 and s.classes == MOTIONS and "clips of 8x1x36x36" in s.summary()
    code = main(["classify", "train", "--data", "moving-fashion-mnist", "--data-dir", str(idx_dir), "--model", "lrcn",
                 "--width", "0.25", "--epochs", "1", "--limit", "96", "--no-progress", "--no-tensorboard"])
    assert code == 0 and "test accuracy" in capsys.readouterr().out
    png = next(Path("runs/classify/exp").glob("*.png"))
    assert main(["classify", "predict", "runs/classify/exp", str(png)]) == 2
    assert "classifies clips" in capsys.readouterr().err


def test_isinstance_of_clips():
    t = ImageTensors(torch.zeros(2, 3, 1, 8, 8, dtype=torch.uint8), torch.zeros(2, dtype=torch.long), ["x"])
    assert t.frames == 3 and t.channels == 1 and t.img_size == (8, 8)
