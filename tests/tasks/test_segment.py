"""dcv segment train|val|predict, dcv autoencoder train and dcv bench segment, end to end on small data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error, run, write_mask_pairs
from dcvkit.errors import ConfigError
from dcvkit.io import load_checkpoint

FAST = ["--no-progress", "--no-tensorboard", "--base", "8", "--depth", "2", "--batch-size", "8"]


@pytest.fixture
def squares(tmp_path):
    return write_mask_pairs(tmp_path / "squares", n=48, size=24, classes=["background", "left", "right"])


def test_train_learns_val_and_predict(squares, tmp_path, capsys):
    code, out, err = run(capsys, "segment", "train", "--data", str(squares), "--epochs", "12", "--lr", "0.01",
                         "--val-split", "0.25", *FAST)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "segment" / "exp"
    for f in ("best.pt", "last.pt", "config.yaml", "metrics.csv", "curves.png"):
        assert (run_dir / f).is_file(), f
    ckpt = load_checkpoint(run_dir / "best.pt")
    assert ckpt["meta"]["classes"] == ["background", "left", "right"] and ckpt["meta"]["target"] == "mask"
    assert ckpt["config"]["model"] == "unet"

    code, out, err = run(capsys, "segment", "val", str(run_dir), "--split", "val", "--out", str(tmp_path / "v"))
    assert code == 0, err
    res = json.loads((tmp_path / "v" / "results.json").read_text())
    assert res["mean_dice"] > 0.8, res  # the squares are easy: a model that learned nothing scores ~0
    assert [c["class"] for c in res["per_class"]] == ["background", "left", "right"]
    assert "mean Dice" in out and "left" in out and (tmp_path / "v" / "predictions.png").is_file()

    # predict on an image of another size than the training images
    img = np.zeros((30, 40, 3), dtype=np.uint8)
    img[4:12, 4:12] = 220
    Image.fromarray(img).save(tmp_path / "new.png")
    code, out, err = run(capsys, "segment", "predict", str(run_dir), str(tmp_path / "new.png"),
                         "--out", str(tmp_path / "p"))
    assert code == 0, err
    mask = Image.open(tmp_path / "p" / "new_mask.png")
    assert mask.mode == "P" and mask.size == (40, 30)  # palette PNG: ids you can read, colours you can see
    ids = np.array(mask)
    assert set(np.unique(ids)) <= {0, 1, 2} and (ids[5:11, 5:11] == 1).mean() > 0.8
    overlay = Image.open(tmp_path / "p" / "new_overlay.png")
    assert overlay.mode == "RGB" and overlay.size == (40, 30)


def test_two_classes_get_a_sigmoid_head(tmp_path, capsys):
    root = write_mask_pairs(tmp_path / "bin", n=12, size=16)
    for p in (root / "masks").iterdir():  # one foreground class
        m = np.array(Image.open(p))
        Image.fromarray(np.where(m == 2, 1, m).astype(np.uint8)).save(p)
    code, _, err = run(capsys, "segment", "train", "--data", str(root), "--epochs", "1", *FAST)
    assert code == 0, err
    meta = load_checkpoint(tmp_path / "runs" / "segment" / "exp" / "best.pt")["meta"]
    assert meta["model_kwargs"]["num_classes"] == 1 and meta["classes"] == ["0", "1"]
    # the task table says what exports: not a segmentation run (one line naming the tasks that do)
    code, _, err = run(capsys, "export", str(tmp_path / "runs" / "segment" / "exp"))
    assert_one_line_error(code, err, "a segment run", "takes classify, detect, generate runs")


def test_augmented_masks_follow_the_images(squares):
    """The task's augmentation moves masks with their images: after rotations, shifts and flips the bright
    pixels are still the labelled ones."""
    from dcvkit.augment import Augmenter, parse_augment
    from dcvkit.data.masks import load_mask_folder
    from dcvkit.models import create_model
    from dcvkit.models.normalise import Normaliser
    from dcvkit.tasks.segment import SegmentationTask, SegmentConfig

    data = load_mask_folder(squares)
    cfg = SegmentConfig(augment="rotation_range=30, width_shift_range=0.2, horizontal_flip=true, fill_mode=constant")
    aug = Augmenter(parse_augment(cfg.augment), seed=1)
    task = SegmentationTask(create_model("unet", num_classes=3, base=4, depth=1), cfg, data.classes,
                            Normaliser([0.5] * 3, [0.2] * 3), {}, aug)
    masks = data.masks.clone()
    masks[masks == 255] = 0
    images, moved = task._augment(data.images, masks)
    assert not torch.equal(moved, masks)
    bright, labelled = images.float().mean(1) > 128, moved > 0
    agree = (bright == labelled).float().mean()
    assert agree > 0.97, agree


def test_train_with_augmentation_and_resume(squares, tmp_path, capsys):
    args = ["segment", "train", "--data", str(squares), "--augment", "rotation_range=15, horizontal_flip=true",
            *FAST]
    code, _, err = run(capsys, *args, "--epochs", "1")
    assert code == 0, err
    run_dir = tmp_path / "runs" / "segment" / "exp"
    code, _, err = run(capsys, "segment", "train", "--resume", str(run_dir), "--epochs", "2", "--no-progress")
    assert code == 0, err
    assert len(load_checkpoint(run_dir / "last.pt")["history"]) == 2
    assert not (tmp_path / "runs" / "segment" / "exp2").exists()


def test_autoencoder_reconstructs(idx_dir, tmp_path, capsys):
    code, out, err = run(capsys, "autoencoder", "train", "--data-dir", str(idx_dir), "--epochs", "3", "--base", "8",
                         "--batch-size", "32", "--lr", "0.01", "--no-progress", "--no-tensorboard")
    assert code == 0, err
    run_dir = tmp_path / "runs" / "autoencoder" / "exp"
    res = json.loads((run_dir / "results.json").read_text())
    # a blank (all-mean) prediction of these bar images scores about 12 dB; a learned one much more
    assert res["psnr"] > 15, res
    assert (run_dir / "reconstructions.png").is_file() and "PSNR" in out
    code, out, err = run(capsys, "segment", "val", str(run_dir))
    assert code == 0 and "PSNR" in out, err


def test_bad_options_are_one_line_errors(squares, tmp_path, capsys):
    code, _, err = run(capsys, "segment", "train", "--data", str(squares), "--loss", "mse", *FAST)
    assert_one_line_error(code, err, "--loss mse", "--target mask")
    code, _, err = run(capsys, "segment", "train", "--data", str(squares), "--model", "cnn", *FAST)
    assert_one_line_error(code, err, "cnn")
    code, _, err = run(capsys, "segment", "val", str(tmp_path / "nope"))
    assert_one_line_error(code, err, "no such checkpoint")


@pytest.mark.data
def test_scenes_train_and_bench(fashion_mnist, tmp_path, capsys):
    code, out, err = run(capsys, "segment", "train", "--scenes", "24", "--test-scenes", "8", "--img-size", "64",
                         "--epochs", "1", *FAST)
    assert code == 0, err
    res = json.loads((tmp_path / "runs" / "segment" / "exp" / "results.json").read_text())
    assert len(res["per_class"]) == 11 and res["images"] == 8
    code, out, err = run(capsys, "bench", "segment", "--models", "unet,conv_autoencoder,smp_unet:resnet18",
                         "--scenes", "16", "--test-scenes", "4", "--img-size", "64", "--budget-minutes", "0.01",
                         "--calibration-steps", "1", "--batch-size", "4", "--no-progress")
    assert code == 0, err
    bench = json.loads((tmp_path / "runs" / "bench" / "segment" / "exp" / "bench.json").read_text())
    assert [r["model"] for r in bench["rows"]] == ["unet", "conv_autoencoder", "smp_unet:resnet18"]
    assert all(0 <= r["mean_dice"] <= 1 and r["train_images_per_s"] > 0 for r in bench["rows"])
    assert any("skip-less" in v for v in bench["verdicts"]) and "mean Dice" in out


def test_crops_train_and_tiles_predict_on_streamed_mixed_sizes(tmp_path):
    """A folder of images of two sizes, streamed (--memory-mb 0), letterboxed to one size with void padding;
    U-Net trains on random 16-px crops and predicts whole images through overlapping tiles."""
    from PIL import Image

    from dcvkit.data.masks import IGNORE, MaskFiles
    from dcvkit.tasks.segment import SegmentConfig, evaluate, load_splits, predict, tile_starts, train

    root = tmp_path / "seg"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(32, 48), (40, 30)] * 4):
        img = rng.integers(0, 40, (h, w, 3)).astype(np.uint8)
        mask = np.zeros((h, w), dtype=np.uint8)
        img[4:14, 4:14], mask[4:14, 4:14] = 220, 1
        Image.fromarray(img).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    cfg = SegmentConfig(data=str(root), model="unet", depth=2, base=4, epochs=1, batch_size=4, crop=16,
                        memory_mb=0, val_split=0.25, progress=False, tensorboard=False, project=str(tmp_path / "r"))
    splits = load_splits(cfg)
    assert isinstance(splits.train, MaskFiles) and splits.img_size == (32, 48)
    images, masks = next(iter(splits.train.loader(4, shuffle=False, workers=0)))
    tall = [int(img.stem) % 2 == 1 for img, _ in splits.train.pairs[:4]]  # the 40x30 ones: 32x24, padded void
    assert images.shape == (4, 3, 32, 48) and tall.count(True) >= 1
    assert all((m[:, :3] == IGNORE).all() == t for m, t in zip(masks, tall))
    run = train(cfg)
    r = evaluate(run.run_dir, data=str(root), split="train")
    assert 0 <= r["mean_dice"] <= 1 and r["images"] == 6
    out = predict(run.run_dir, [root / "images" / "0.png"], tmp_path / "p")
    assert Image.open(out[0].mask).size == (48, 32)
    assert tile_starts(48, 16) == [0, 12, 24, 32] and tile_starts(10, 16) == [0]
    with pytest.raises(ConfigError, match="--crop 64"):
        train(dataclasses.replace(cfg, crop=64))
