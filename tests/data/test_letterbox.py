"""Letterboxing and streamed detection data: boxes round-trip to each image's original pixels for any mix of
sizes and aspect ratios; the in-memory and streamed paths give the same batches; mixed sizes train and
evaluate (in original pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcvkit.data import coco
from dcvkit.data.annotations import AnnotatedImage, Annotations
from dcvkit.data.detection import DetectionFiles, DetectionTensors, detection_files, read_annotations, to_tensors
from dcvkit.data.letterbox import FILL, Placement, default_size, letterbox_tensor, read_letterboxed
from dcvkit.data.splits import detection_splits

SIZES = [(480, 640), (640, 480), (37, 211), (1000, 999), (96, 96), (61, 43)]  # (height, width)


def write_mixed(root: Path, sizes=SIZES, seed: int = 0) -> Path:
    """A COCO dataset of noise images of the given sizes, each with 1-3 bright boxes of 3 classes."""
    g = np.random.default_rng(seed)
    ann = Annotations(root, ["a", "b", "c"])
    (root / "images").mkdir(parents=True)
    for i, (h, w) in enumerate(sizes):
        img = g.integers(0, 90, (h, w, 3), dtype=np.uint8)
        boxes, labels = [], []
        for _ in range(int(g.integers(1, 4))):
            bw, bh = int(g.integers(max(2, w // 6), max(3, w // 2))), int(g.integers(max(2, h // 6), max(3, h // 2)))
            x0, y0 = int(g.integers(0, w - bw)), int(g.integers(0, h - bh))
            c = int(g.integers(0, 3))
            img[y0:y0 + bh, x0:x0 + bw] = (200, 60 + 60 * c, 250 - 80 * c)
            boxes.append([x0, y0, x0 + bw, y0 + bh])
            labels.append(c)
        Image.fromarray(img).save(root / "images" / f"{i}.png")
        ann.images.append(AnnotatedImage(f"images/{i}.png", w, h, torch.tensor(boxes, dtype=torch.float32),
                                         torch.tensor(labels)))
    return coco.write(ann, root / "annotations.json")


@pytest.mark.parametrize("target", [(320, 320), (480, 640), (128, 96), (64, 64)])
def test_boxes_round_trip_to_original_pixels_for_any_size_and_aspect(target):
    g = torch.Generator().manual_seed(0)
    for h, w in SIZES:
        p = Placement.fit(h, w, target)
        y0, x0, nh, nw = p.inner
        assert 0 <= y0 and 0 <= x0 and y0 + nh <= target[0] and x0 + nw <= target[1]
        assert nh == target[0] or nw == target[1]  # it fills one side
        assert abs(p.sx - p.sy) <= 1 / min(h, w)  # the aspect ratio kept, but for rounding to whole pixels
        xy = torch.rand(20, 2, generator=g) * torch.tensor([w, h])
        wh = torch.rand(20, 2, generator=g) * torch.tensor([w, h]) / 3
        boxes = torch.cat([xy, (xy + wh).minimum(torch.tensor([w, h]))], 1)
        there = p.to_letterbox(boxes)
        assert (there[:, 0] >= x0 - 1e-4).all() and (there[:, 2] <= x0 + nw + 1e-4).all()
        assert torch.allclose(p.to_original(there), boxes, atol=1e-4, rtol=0)
        assert Placement.from_list(p.as_list()) == p


def test_letterboxed_pixels_pad_grey_and_predict_sees_what_training_saw(tmp_path):
    img = np.zeros((100, 250, 3), dtype=np.uint8)
    img[:, :125] = 255
    Image.fromarray(img).save(tmp_path / "a.png")
    arr, p = read_letterboxed(tmp_path / "a.png", 3, (128, 128))
    assert arr.shape == (3, 128, 128) and (p.sx, p.py) == (128 / 250, 38.0)
    assert (arr[:, :38] == FILL).all() and (arr[:, 38 + 51:] == FILL).all()  # 100 * 0.512 = 51 rows of image
    assert (arr[:, 40:85, :60] == 255).all() and (arr[:, 40:85, 70:] == 0).all()
    same, _ = letterbox_tensor(torch.from_numpy(img).permute(2, 0, 1), (128, 128))
    assert torch.equal(same, torch.from_numpy(arr))


def test_default_size_keeps_the_aspect_and_caps_the_side():
    assert default_size(480, 640, None) == (480, 640)
    assert default_size(3000, 4000, None) == (480, 640)
    assert default_size(100, 90, None) == (128, 96)
    assert default_size(480, 640, 320) == (320, 320)


def test_streamed_and_in_memory_batches_are_the_same(tmp_path):
    files = detection_files(read_annotations(write_mixed(tmp_path / "d")), (96, 128))
    memory = to_tensors(files)
    assert isinstance(files, DetectionFiles) and isinstance(memory, DetectionTensors)
    for epoch in (0, 1):
        a, b = memory.loader(4, shuffle=True, seed=3), files.loader(4, shuffle=True, seed=3, workers=2)
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        batches = list(zip(a, b, strict=True))
        assert len(batches) == 2
        for (ia, ba, la, _), (ib, bb, lb, _) in batches:
            assert torch.equal(ia, ib) and ia.dtype == torch.uint8
            assert all(torch.equal(x, y) for x, y in zip(ba, bb)) and all(torch.equal(x, y) for x, y in zip(la, lb))
    (ma, sa), (mb, sb) = memory.mean_std(), files.mean_std()
    assert ma == pytest.approx(mb, abs=1e-6) and sa == pytest.approx(sb, abs=1e-6)


def test_memory_budget_decides_streaming(tmp_path):
    src = write_mixed(tmp_path / "d")
    assert isinstance(detection_splits(str(src), val_split=0.34).train, DetectionTensors)
    splits = detection_splits(str(src), val_split=0.34, memory_mb=0)
    assert isinstance(splits.train, DetectionFiles) and isinstance(splits.val, DetectionFiles)
    assert splits.img_size == (480, 640) and len(splits.train) + len(splits.val) == len(SIZES)
    originals = {Path(im.file).name: im.boxes for im in read_annotations(src).images}
    for part in (splits.train, splits.val):  # metrics see each image's own pixels again
        for name, boxes in zip(part.files, part.original_boxes()):
            assert torch.allclose(boxes, originals[Path(name).name], atol=1e-3)


@pytest.mark.parametrize("memory_mb", [2048, 0])
def test_mixed_sizes_train_and_evaluate_in_original_pixels(tmp_path, memory_mb):
    from dcvkit.tasks.detect import DetectConfig, evaluate, train

    src = write_mixed(tmp_path / "d", SIZES * 2)
    cfg = DetectConfig(model="yolo_n", data=str(src), img_size=64, epochs=1, batch_size=4, val_split=0.25,
                       memory_mb=memory_mb, workers=1, progress=False, tensorboard=False, project=str(tmp_path / "r"),
                       test=False)
    result = train(cfg)
    r = evaluate(result.run_dir, data=str(src), out_dir=tmp_path / "eval")
    assert 0 <= r["map50"] <= 1 and r["images"] == 2 * len(SIZES)
    assert (tmp_path / "eval" / "predictions.png").is_file()


def test_streamed_image_of_another_size_than_annotated_is_one_line(tmp_path, capsys):
    from conftest import assert_one_line_error, run

    src = write_mixed(tmp_path / "d", [(40, 60), (50, 50)])
    Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(tmp_path / "d" / "images" / "1.png")
    code, _, err = run(capsys, "detect", "train", "--data", str(src), "--model", "yolo_n", "--memory-mb", "0",
                       "--epochs", "1", "--val-split", "0", "--img-size", "64", "--no-progress")
    assert_one_line_error(code, err, "1.png: the image is 20x20 but its annotations say 50x50")
    Image.fromarray(np.zeros((50, 50, 3), dtype=np.uint8)).save(tmp_path / "d" / "images" / "1.png")
    code, _, err = run(capsys, "detect", "train", "--data", str(src), "--model", "fast_rcnn", "--memory-mb", "0",
                       "--epochs", "1", "--val-split", "0", "--img-size", "64", "--no-progress")
    assert_one_line_error(code, err, "proposals are computed for images held in memory", "--memory-mb")
