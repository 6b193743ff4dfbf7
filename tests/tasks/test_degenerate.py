"""Failures that look like results (issue 29): a segmenter that predicts one class everywhere, a classifier
whose answer is the same for every image, a detector that finds no box. Each is warned about during training
(every epoch's validation), flagged in results.json (`degenerate`) and on the closing `done:` line.

The blind models below ignore their input by construction (their output is a learned bias), as a network
that has collapsed does: the checks must not depend on how the collapse came about."""

from __future__ import annotations

import json

import pytest
import torch
from torch import Tensor, nn

from conftest import run
from dcvkit.models import register_model


class BlindSegmenter(nn.Module):
    """Per-class logits that are the same at every pixel of every image."""

    def __init__(self, num_classes: int = 2, in_chans: int = 3, img_size=64):
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        self.bias = nn.Parameter(torch.zeros(num_classes))
        self.unused = nn.Conv2d(in_chans, 1, 1)  # (the engine turns conv nets channels-last)

    def forward(self, x: Tensor) -> Tensor:
        return self.bias[None, :, None, None].expand(len(x), -1, *x.shape[-2:]) + 0 * x[:, :1]


class BlindClassifier(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 1, img_size=28):
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.fc = nn.Linear(1, num_classes)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.ones(len(x), 1, device=x.device)) + 0 * x.flatten(1)[:, :1]


def blind_segmenter(num_classes: int = 2, in_chans: int = 3, img_size=64) -> BlindSegmenter:
    """A test segmenter that ignores its input."""
    return BlindSegmenter(num_classes, in_chans, img_size)


def blind_classifier(num_classes: int = 10, in_chans: int = 1, img_size=28) -> BlindClassifier:
    """A test classifier that ignores its input."""
    return BlindClassifier(num_classes, in_chans, img_size)


@pytest.fixture(autouse=True, scope="module")
def registered():
    from dcvkit.models import registry

    register_model("segment")(blind_segmenter)
    register_model("classify")(blind_classifier)
    yield
    for name in ("blind_segmenter", "blind_classifier"):
        registry._REGISTRY.pop(name)


def flagged(results_json) -> dict:
    r = json.loads(results_json.read_text())
    assert r["degenerate"] and r["degenerate"] in r["warning"], r.get("warning")
    return r


def test_a_segmenter_predicting_background_everywhere_is_flagged(capsys, tmp_path, fashion_mnist):
    with pytest.warns(UserWarning) as caught:
        code, out, err = run(capsys, "segment", "train", "--model", "blind_segmenter", "--scenes", "40",
                             "--test-scenes", "8", "--img-size", "64", "--epochs", "2", "--batch-size", "8",
                             "--no-progress", "--no-tensorboard", "--project", str(tmp_path))
    assert code == 0, err
    said = [str(w.message) for w in caught]
    for epoch in (1, 2):
        assert any(m.startswith(f"epoch {epoch}, validation: the model predicts 'background' for every pixel")
                   for m in said), said
    r = flagged(tmp_path / "segment" / "exp" / "results.json")
    assert r["mean_dice"] == 0 and f"{r['pixel_accuracy']:.1%} of the truth" in r["degenerate"]
    assert "--loss ce_dice or dice" in r["degenerate"]
    assert "; warning: at that epoch the model predicts 'background' for every pixel" in out


def test_a_classifier_giving_every_image_the_same_answer_is_flagged(capsys, tmp_path, idx_dir):
    with pytest.warns(UserWarning) as caught:
        code, out, err = run(capsys, "classify", "train", "--model", "blind_classifier", "--data-dir", str(idx_dir),
                             "--limit", "300", "--epochs", "1", "--no-progress", "--no-tensorboard", "--project",
                             str(tmp_path))
    assert code == 0, err
    assert any("epoch 1, validation: the model's output is the same for all" in str(w.message) for w in caught)
    r = flagged(tmp_path / "classify" / "exp" / "results.json")
    assert "it ignores its input" in r["degenerate"] and r["split"] == "test"


def test_a_detector_finding_no_box_is_flagged(capsys, tmp_path, fashion_mnist):
    with pytest.warns(UserWarning) as caught:  # scores are below 1.0 always: nothing passes the threshold
        code, out, err = run(capsys, "detect", "train", "--model", "yolo", "--width", "0.25", "--scenes", "24",
                             "--test-scenes", "6", "--epochs", "1", "--score-thresh", "1.0", "--no-progress",
                             "--no-tensorboard", "--project", str(tmp_path))
    assert code == 0, err
    assert any("epoch 1, validation: the model detected no box in any of the" in str(w.message) for w in caught)
    r = flagged(tmp_path / "detect" / "exp" / "results.json")
    assert r["degenerate"].startswith("the model detected no box in any of the 6 images at --score-thresh 1")


def test_a_model_that_learned_something_is_not_flagged(capsys, tmp_path, idx_dir):
    code, out, err = run(capsys, "classify", "train", "--model", "cnn_tiny", "--data-dir", str(idx_dir),
                         "--limit", "300", "--epochs", "1", "--no-progress", "--no-tensorboard", "--project",
                         str(tmp_path))
    assert code == 0, err
    assert "degenerate" not in json.loads((tmp_path / "classify" / "exp" / "results.json").read_text())
    assert "warning" not in out
