"""FashionScenes: determinism, labels that agree with each other, and the round trip through every format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, run, synthetic_images
from dcvkit.data import coco, voc, yolo
from dcvkit.data.core import ImageTensors
from dcvkit.data.masks import load_mask_folder
from dcvkit.data.scenes import FORMATS, SceneConfig, fashion_scenes, write_scenes


@pytest.fixture(scope="module")
def items() -> ImageTensors:
    imgs, labels = synthetic_images(200, num_classes=4)
    imgs[:, 3:-3, 3:-3] = np.maximum(imgs[:, 3:-3, 3:-3], 90)  # a solid item in the middle of each image
    return ImageTensors(torch.from_numpy(imgs)[:, None], torch.from_numpy(labels.astype(np.int64)),
                        ["a", "b", "c", "d"])


@pytest.fixture(scope="module")
def scenes(items):
    return fashion_scenes(items, 24, SceneConfig(size=96), seed=3)


def test_deterministic_and_prefix_stable(items, scenes):
    again = fashion_scenes(items, 24, SceneConfig(size=96), seed=3)
    assert torch.equal(again.images, scenes.images) and torch.equal(again.masks, scenes.masks)
    prefix = fashion_scenes(items, 10, SceneConfig(size=96), seed=3)  # scene i depends on (seed, i) only
    assert torch.equal(prefix.images, scenes.images[:10])
    other = fashion_scenes(items, 10, SceneConfig(size=96), seed=4)
    assert not torch.equal(other.images, prefix.images)


def test_labels_agree(scenes):
    cfg = SceneConfig(size=96)
    assert scenes.images.shape == (24, 3, 96, 96) and scenes.classes[0] == "background"
    counts = [len(b) for b in scenes.boxes]
    assert min(counts) >= 1 and max(counts) <= cfg.max_objects and sum(counts) > 24
    for i in range(len(scenes)):
        inst = scenes.instance_masks(i)
        for j, (box, label) in enumerate(zip(scenes.boxes[i], scenes.labels[i])):
            ys, xs = inst[j].nonzero(as_tuple=True)
            # the box is the tight box of the visible instance mask (pixel edges)
            assert box.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
            # the class mask says label + 1 wherever the instance is
            assert (scenes.masks[i][inst[j]] == label + 1).all()
        assert torch.equal(scenes.masks[i] > 0, scenes.instances[i] > 0)


def test_items_come_from_the_given_split(items, scenes):
    for i in range(len(scenes)):
        assert torch.equal(items.labels[scenes.sources[i]], scenes.labels[i])


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "masks"])
def test_round_trip_boxes_labels_and_instance_masks(tmp_path, scenes, fmt):
    root = write_scenes(scenes, tmp_path / fmt, fmt)
    ann = {"coco": lambda: coco.read(root / "annotations.json"), "yolo": lambda: yolo.read(root / "data.yaml"),
           "voc": lambda: voc.read(root)}[fmt]()
    assert ann.classes == scenes.item_classes and len(ann) == len(scenes)
    for i, im in enumerate(ann.images):
        assert (root / im.file).is_file() and (im.width, im.height) == (96, 96)
        assert torch.allclose(im.boxes, scenes.boxes[i], atol=1e-3)  # YOLO stores 6 decimals of a fraction
        assert torch.equal(im.labels, scenes.labels[i])
        if fmt != "yolo":  # YOLO detection labels carry no masks
            assert torch.equal(im.masks, scenes.instance_masks(i))


def test_round_trip_mask_folder(tmp_path, scenes):
    root = write_scenes(scenes, tmp_path / "masks", "masks")
    back = load_mask_folder(root)
    assert back.classes == scenes.classes
    assert torch.equal(back.images, scenes.images) and torch.equal(back.masks, scenes.masks)


def test_rle_matches_the_coco_definition():
    """Uncompressed COCO RLE: column-major runs, starting with a (possibly empty) run of zeros."""
    m = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)
    assert coco.rle_encode(m) == {"size": [2, 3], "counts": [0, 2, 1, 1, 2]}
    assert (coco.rle_decode(coco.rle_encode(m), "x") == m).all()


def test_annotation_paths_cannot_leave_the_dataset(tmp_path, scenes):
    import json

    from dcvkit.errors import DataError

    root = write_scenes(scenes.subset(torch.arange(2)), tmp_path / "c", "coco")
    data = json.loads((root / "annotations.json").read_text())
    data["images"][0]["file_name"] = "../../etc/passwd"
    (root / "annotations.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="outside the dataset folder"):
        coco.read(root / "annotations.json")


def test_degenerate_boxes_are_dropped_with_a_warning(tmp_path, scenes):
    root = write_scenes(scenes.subset(torch.arange(1)), tmp_path / "y", "yolo")
    label = next((root / "labels").glob("*.txt"))
    label.write_text(label.read_text() + "0 0.5 0.5 0.0 0.2\n0 1.7 1.5 0.1 0.1\n")
    with pytest.warns(UserWarning, match="dropped 2 degenerate box"):
        ann = yolo.read(root / "data.yaml")
    assert len(ann.images[0].boxes) == len(scenes.boxes[0])


@pytest.mark.data
def test_dcv_data_scenes_cli(fashion_mnist, tmp_path, capsys):
    code, out, err = run(capsys, "data", "scenes", "--out", str(tmp_path / "s"), "--format", "coco", "--n", "6",
                         "--size", "64", "--split", "test")
    assert code == 0, err
    ann = coco.read(tmp_path / "s" / "annotations.json")
    assert len(ann) == 6 and ann.classes[0] == "T-shirt/top" and "wrote 6 scenes" in out
    # never overwrites
    code, _, err = run(capsys, "data", "scenes", "--out", str(tmp_path / "s"), "--n", "2")
    assert_one_line_error(code, err, "already exists and is not empty")


@pytest.mark.parametrize("fmt", ["yolo", "masks"])
def test_photo_scenes_are_real_sizes_on_photographs(items, tmp_path, fmt):
    """--photos: 160x120 crops of scikit-image's photographs, items from 8 px to most of the image, written by
    worker processes; a YOLO dataset reads back with every box inside its image, a masks folder trains."""
    from PIL import Image

    from dcvkit.data.detection import read_annotations
    from dcvkit.data.scenes import PhotoSceneConfig, photo_scene, load_photos, write_photo_scenes

    cfg = PhotoSceneConfig(height=120, width=160, min_side=8, min_objects=3, max_objects=10)
    root, objects = write_photo_scenes(items, 6, tmp_path / fmt, fmt, cfg, seed=1, workers=2)
    assert objects >= 6
    first = Image.open(root / "images" / "000000.jpg")
    assert first.size == (160, 120)
    again = photo_scene(items, cfg, load_photos(), 1, 0)  # scene i depends on (seed, i) alone
    assert np.abs(np.asarray(first, dtype=np.int16) - again[0].permute(1, 2, 0).numpy()).mean() < 3  # JPEG
    if fmt == "yolo":
        ann = read_annotations(root / "data.yaml")
        sides = torch.cat([im.boxes[:, 2:] - im.boxes[:, :2] for im in ann.images]).amax(1)
        assert len(ann.images) == 6 and sides.min() >= 4 and sides.max() <= 0.8 * 120 + 1
        assert all(((im.boxes >= 0) & (im.boxes[:, 2:3] <= 160) & (im.boxes[:, 3:4] <= 120)).all() for im in ann.images)
    else:
        back = load_mask_folder(root)
        assert back.images.shape == (6, 3, 120, 160) and back.classes[0] == "background"
        assert (back.masks > 0).any()
