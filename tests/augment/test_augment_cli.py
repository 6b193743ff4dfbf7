"""Augmentation end to end: `dcv classify train --augment`, `dcv augment preview`, `dcv bench augment`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from conftest import assert_one_line_error, quick_args, run
from dcvkit.io import load_checkpoint


def test_train_with_inline_augmentation_saves_it_resolved(idx_dir, capsys):
    code, out, err = run(capsys, "classify", "train", "--data-dir", str(idx_dir), "--limit", "200",
                         *quick_args("--epochs", "1", "--hflip", "--augment", "rotation_range=10, zoom_range=0.1"))
    assert code == 0, err
    saved = yaml.safe_load(Path("runs/classify/exp/config.yaml").read_text())
    assert saved["augment"] == "rotation_range=10.0, zoom_range=0.1, horizontal_flip=true"
    meta = load_checkpoint("runs/classify/exp/last.pt")["meta"]
    assert meta["augment"]["config"] == {"rotation_range": 10.0, "zoom_range": 0.1, "horizontal_flip": True}


def test_featurewise_statistics_are_fitted_saved_and_used_at_evaluation(idx_dir, tmp_path, capsys):
    aug = tmp_path / "aug.yaml"
    aug.write_text("featurewise_center: true\nfeaturewise_std_normalization: true\nwidth_shift_range: 2\n"
                   "validation_split: 0.2\n")
    code, out, err = run(capsys, "classify", "train", "--data-dir", str(idx_dir), "--augment", str(aug),
                         *quick_args("--epochs", "1", "--lr", "0.02"))
    assert code == 0, err
    ckpt = load_checkpoint("runs/classify/exp/best.pt")
    a = ckpt["meta"]["augment"]
    assert a["config"]["width_shift_range"] == 2 and isinstance(a["config"]["width_shift_range"], int)
    # fitted on the 480 training images (validation_split 0.2 of 600 held out), in pixel units
    from dcvkit.tasks.classify import ClassifyConfig

    splits = ClassifyConfig(data_dir=str(idx_dir), val_split=0.2).load_splits(0)
    assert len(splits.train) == 480 and len(splits.val) == 120
    x = splits.train.images.double()
    assert torch.allclose(a["mean"].double(), x.mean((0, 2, 3)), rtol=1e-4)
    assert torch.allclose(a["std"].double(), x.std((0, 2, 3), correction=0), rtol=1e-4)
    # evaluation standardizes with the saved statistics: the same accuracy as in training's own report
    code, out, err = run(capsys, "classify", "val", "runs/classify/exp", "--split", "val")
    assert code == 0 and "val split, 120 images" in out, err


@pytest.mark.parametrize("spec,fragment", [
    ("rotation_rang=3", "rotation_rang"),
    ("missing.yaml", "missing.yaml"),
    ("resize=14", "resize"),
    ("zoom_range=[2, 1]", "zoom_range"),
])
def test_bad_augmentation_is_one_line(idx_dir, capsys, spec, fragment):
    code, _, err = run(capsys, "classify", "train", "--data-dir", str(idx_dir), "--augment", spec, *quick_args())
    assert_one_line_error(code, err, fragment)


def test_preview_draws_boxes_and_masks(tmp_path, capsys):
    img = Image.new("RGB", (64, 48), (20, 20, 20))
    img.paste((230, 200, 40), (20, 14, 45, 31))
    img.save(tmp_path / "photo.png")
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (20, 14, 45, 31))
    mask.save(tmp_path / "mask.png")
    code, out, err = run(capsys, "augment", "preview", "--config", "rotation_range=30, horizontal_flip=true",
                         str(tmp_path / "photo.png"), "--box", "20,14,45,31", "--mask", str(tmp_path / "mask.png"),
                         "--n", "5", "--seed", "1")
    assert code == 0, err
    png = Path("runs/augment/exp/preview.png")
    assert png.stat().st_size > 5000 and "preview.png" in out
    assert yaml.safe_load(Path("runs/augment/exp/augment.yaml").read_text()) == {"rotation_range": 30.0,
                                                                                  "horizontal_flip": True}
    code, _, err = run(capsys, "augment", "preview", "--config", "rotation_range=30", str(tmp_path / "photo.png"),
                       "--box", "20,14,10,31")
    assert_one_line_error(code, err, "--box")
    code, _, err = run(capsys, "augment", "preview", "--config", "rotation_range=30", str(tmp_path / "nope.png"))
    assert_one_line_error(code, err, "nope.png")


def test_preview_from_a_dataset(idx_dir, capsys):
    code, _, err = run(capsys, "augment", "preview", "--config", "zoom_range=0.3, fill_mode=wrap", "--data",
                       "fashion-mnist", "--data-dir", str(idx_dir), "--count", "2", "--n", "3")
    assert code == 0, err
    assert Path("runs/augment/exp/preview.png").stat().st_size > 3000


