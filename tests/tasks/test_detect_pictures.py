"""What a detection picture shows (issue 29): the best answer on top, nothing under the display threshold,
one class per object unless asked; predictions.json keeps every detection."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run
from dcvkit.models.detect.postprocess import Detections
from dcvkit.viz.detect import displayed, draw_detections
from dcvkit.viz.segment import colours

CLASSES = ["coat", "bag", "shirt", "sandal"]


def crafted() -> Detections:
    """An object found correctly (coat 0.87) and, over the same object, lower-scoring guesses of other classes
    (shirt 0.45 with IoU 0.9, sandal 0.06); a bigger bag (0.59, IoU 0.21 with the coat) whose label sits where
    the coat's does; best first, as a detector returns them."""
    boxes = torch.tensor([[10., 10., 60., 60.], [10., 10., 120., 120.], [11., 11., 58., 58.], [10., 12., 60., 60.]])
    return Detections(boxes, torch.tensor([0.87, 0.59, 0.45, 0.06]), torch.tensor([0, 1, 2, 3]))


def test_displayed_keeps_one_class_per_object_above_the_threshold_best_last():
    d = displayed(crafted())
    assert d.scores.tolist() == pytest.approx([0.59, 0.87]) and d.labels.tolist() == [1, 0]  # the best drawn last
    assert displayed(crafted(), all_classes=True).labels.tolist() == [2, 1, 0]
    assert displayed(crafted(), min_score=0.0, all_classes=True).labels.tolist() == [3, 2, 1, 0]
    assert len(displayed(crafted(), min_score=0.9)) == 0


def test_the_highest_scoring_label_is_drawn_on_top():
    image = torch.full((3, 128, 128), 255, dtype=torch.uint8)
    im = np.asarray(draw_detections(image, crafted(), CLASSES, scale=3))
    pal = colours(len(CLASSES) + 1)
    # both labels start at the boxes' shared corner (x 30, y 18 after scaling): the coat's (0.87) shows there
    assert tuple(im[20, 31]) == tuple(int(v) for v in pal[1])
    shown = {tuple(int(v) for v in pal[c + 1]) for c in range(len(CLASSES))} & set(map(tuple, im.reshape(-1, 3)))
    assert shown == {tuple(int(v) for v in pal[1]), tuple(int(v) for v in pal[2])}  # no shirt, no sandal
    everything = np.asarray(draw_detections(image, crafted(), CLASSES, scale=3, min_score=0.0, all_classes=True))
    assert tuple(everything[20, 31]) == tuple(int(v) for v in pal[1])  # still on top of the three under it
    assert tuple(int(v) for v in pal[4]) in set(map(tuple, everything.reshape(-1, 3)))  # the sandal is drawn


def test_predict_draws_what_show_score_asks_and_keeps_every_detection(yolo_run, capsys, tmp_path):
    from dcvkit.data import named
    from dcvkit.data.scenes import SceneConfig, fashion_scenes

    _, test = named.load("fashion-mnist")
    Image.fromarray(fashion_scenes(test, 1, SceneConfig(), seed=3).images[0].permute(1, 2, 0).numpy()).save(
        tmp_path / "scene.png")
    pictures = {}
    for name, flags in (("default", []), ("all", ["--show-score", "0", "--all-classes"]),
                        ("none", ["--show-score", "1.01"])):
        code, _, err = run(capsys, "detect", "predict", str(yolo_run), str(tmp_path / "scene.png"), "--out",
                           str(tmp_path / name), "--score-thresh", "0.01", *flags)
        assert code == 0, err
        pictures[name] = np.asarray(Image.open(tmp_path / name / "scene_detections.png").convert("RGB"))
        assert len(json.loads((tmp_path / name / "predictions.json").read_text())) > 3  # all kept in the JSON
    original = np.asarray(Image.open(tmp_path / "scene.png").convert("RGB").resize(pictures["none"].shape[1::-1],
                                                                                   Image.NEAREST))
    assert np.array_equal(pictures["none"], original)  # nothing above 1.01: the image as it is
    changed = {k: int((v != original).any(-1).sum()) for k, v in pictures.items()}
    assert 0 < changed["default"] < changed["all"], changed
