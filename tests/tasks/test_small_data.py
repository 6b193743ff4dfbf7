"""Small data: scikit-image's real LFW face photos in two folder layouts give the same result with the
defaults; a tiny validation or test split says how little it can tell; ties in best.pt go to the lower
validation loss; benchmark columns appear only for their dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcvkit.engine.callbacks import Improvement
from dcvkit.metrics.classification import accuracy_interval, small_split_note


def lfw_layouts(root: Path) -> tuple[Path, Path]:
    """The 200 25x25 images of ``skimage.data.lfw_subset`` (100 faces, 100 non-faces; the last 20 of each
    are the test split) as class subfolders and as class-in-file-name."""
    import skimage.data

    x = skimage.data.lfw_subset()
    for i, a in enumerate(x):
        cls, split = ("face" if i < 100 else "nonface"), ("test" if i % 100 >= 80 else "train")
        im = Image.fromarray((a * 255).round().astype(np.uint8))
        for path in (root / "a" / split / cls / f"{i:03d}.png", root / "b" / split / f"{cls}.{i:03d}.png"):
            path.parent.mkdir(parents=True, exist_ok=True)
            im.save(path)
    return root / "a", root / "b"


def test_two_layouts_of_real_faces_give_the_same_result_and_warn(tmp_path):
    from dcvkit.tasks.classify import ClassifyConfig, train

    results = []
    for data in lfw_layouts(tmp_path):
        cfg = ClassifyConfig(data=str(data), model="cnn_small", project=str(tmp_path / "runs"), progress=False,
                             tensorboard=False)
        with pytest.warns(UserWarning, match="validation split has only 16 images") as caught:
            r = train(cfg)
        assert any("test split has only 40 images" in str(w.message) for w in caught)
        assert (r.config.batch_size, r.config.lr) == (32, 0.01)  # the small-data defaults, saved as run
        assert r.test["warning"].startswith("the test split has only 40 images")
        lo, hi = r.test["accuracy_ci95"]
        assert lo < r.test["accuracy"] <= hi
        results.append(r.test["accuracy"])
    assert results[0] == results[1] and results[0] >= 0.9, results


def test_options_given_are_kept_on_small_data():
    from dcvkit.tasks.classify import ClassifyConfig, small_data_defaults

    cfg = ClassifyConfig(batch_size=64, lr=0.02)
    assert small_data_defaults(cfg, 100) == cfg
    assert small_data_defaults(ClassifyConfig(), 5000) == ClassifyConfig()
    assert small_data_defaults(ClassifyConfig(small_data=False), 100).lr == ClassifyConfig().lr


def test_accuracy_interval_and_small_split_note():
    lo, hi = accuracy_interval(14, 16)  # 0.875 on 16 images: Wilson 0.64-0.97
    assert lo == pytest.approx(0.640, abs=0.005) and hi == pytest.approx(0.965, abs=0.005)
    assert small_split_note("val", 5000) is None
    assert "16 images" in small_split_note("val", 16) and "+-0.22" in small_split_note("val", 16)


def test_ties_go_to_the_lower_validation_loss():
    best = Improvement("val_acc", tie_break=True)
    assert best.update({"epoch": 1, "val_acc": 1.0, "val_loss": 0.4})
    assert best.update({"epoch": 2, "val_acc": 1.0, "val_loss": 0.1})  # same accuracy, lower loss: better
    assert not best.update({"epoch": 3, "val_acc": 1.0, "val_loss": 0.3})
    assert best.best_epoch == 2
    stopping = Improvement("val_acc")  # early stopping counts real improvements only
    stopping.update({"epoch": 1, "val_acc": 1.0, "val_loss": 0.4})
    assert not stopping.update({"epoch": 2, "val_acc": 1.0, "val_loss": 0.1})


def test_paper_column_only_for_fashion_mnist(tiny_tensors):
    from dcvkit.classical.baselines import run_baselines

    other = run_baselines(tiny_tensors, tiny_tensors, ["logreg"], dataset="faces")
    assert other[0].paper_accuracy is None
    fashion = run_baselines(tiny_tensors, tiny_tensors, ["logreg"], dataset="fashion-mnist")
    assert fashion[0].paper_accuracy is not None
