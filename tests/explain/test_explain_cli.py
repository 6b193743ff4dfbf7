"""`dcv explain saliency|features` and `dcv bench saliency` end to end on a tiny trained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, quick_args, run


@pytest.fixture
def trained(idx_dir, capsys) -> str:
    assert run(capsys, "classify", "train", "--data-dir", str(idx_dir), "--limit", "200",
               *quick_args("--epochs", "1", "--name", "tiny"))[0] == 0
    return "runs/classify/tiny"


def test_saliency_writes_overlays_and_maps(trained, tmp_path, capsys):
    code, out, err = run(capsys, "explain", "saliency", trained, "--index", "0,3", "--method", "all")
    assert code == 0, err
    d = Path(trained, "explain", "exp")  # beside the run explained (issue 29), not in the current folder
    assert "runs/classify/tiny/explain/exp" in out and not Path("runs/explain").exists()
    records = json.loads((d / "saliency.json").read_text())
    assert len(records) == 10 and {r["method"] for r in records} == {"perturbation", "gradient", "smoothgrad",
                                                                       "occlusion", "gradcam"}
    pert = next(r for r in records if r["method"] == "perturbation")
    assert pert["engine"] == "incremental" and pert["forward_passes"] > 784 and 0 < pert["probability"] <= 1
    pngs = sorted(p.name for p in d.glob("*.png"))
    assert len(pngs) == 2 and all((d / p).stat().st_size > 5000 for p in pngs)
    maps = np.load(next(d.glob("*_perturbation.npy")))
    assert maps.shape == (1, 28, 28) and np.abs(maps).max() > 0
    assert np.load(next(d.glob("*_gradcam.npy"))).shape == (1, 28, 28)

    # an RGB photo of another size is converted with a notice; the target by name
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(photo)
    classes = json.loads(Path(trained, "results.json").read_text())
    code, out, err = run(capsys, "explain", "saliency", trained, str(photo), "--method", "gradient,occlusion",
                         "--target", "1")
    assert code == 0 and "converted to the model's input 1x28x28" in err, err
    assert Path(trained, "explain", "exp2", "photo.png").is_file() and classes
    # --out: a new folder under the one given
    code, out, err = run(capsys, "explain", "saliency", trained, str(photo), "--method", "gradient",
                         "--out", str(tmp_path / "pictures"), "--name", "look")
    assert code == 0 and (tmp_path / "pictures" / "look" / "photo.png").is_file(), err


def test_explanations_of_a_read_only_run_go_to_runs_explain_saying_why(trained, capsys, monkeypatch):
    import os

    real = os.access
    # a shared run the user cannot write to (chmod would not stop root, who may run the tests)
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == Path(trained) else real(p, mode))
    code, out, err = run(capsys, "explain", "saliency", trained, "--method", "gradient")
    assert code == 0 and "cannot be written to" in err and Path("runs/explain/exp/saliency.json").is_file(), err
    assert not Path(trained, "explain").exists()


def test_saliency_bad_input_is_one_line(trained, tmp_path, capsys):
    code, _, err = run(capsys, "explain", "saliency", trained, "--method", "lime")
    assert_one_line_error(code, err, "--method lime", "perturbation")
    code, _, err = run(capsys, "explain", "saliency", trained, "--target", "dog")
    assert_one_line_error(code, err, "dog", "classes")
    code, _, err = run(capsys, "explain", "saliency", trained, str(tmp_path / "missing.png"))
    assert_one_line_error(code, err, "missing.png")
    code, _, err = run(capsys, "explain", "saliency", trained, "--index", "99999")
    assert_one_line_error(code, err, "--index 99999")
    code, _, err = run(capsys, "explain", "saliency", str(tmp_path), "--index", "0")
    assert_one_line_error(code, err, "checkpoint")


def test_features_grids_filters_and_layer_names(trained, capsys):
    code, out, _ = run(capsys, "explain", "features", trained, "--list-layers")
    assert code == 0 and "blocks.0" in out and "feature layer" in out and "Conv2d" in out
    code, out, err = run(capsys, "explain", "features", trained, "--index", "2")
    assert code == 0, err
    d = Path(trained, "explain", "exp")
    assert sorted(p.name for p in d.glob("*.png")) == ["features_blocks.0.png", "features_blocks.1.png", "filters.png"]
    code, _, err = run(capsys, "explain", "features", trained, "--layers", "blocks.0,block9")
    line = assert_one_line_error(code, err, "block9", "valid layers", "blocks.0.0")
    assert "--list-layers" in line
    code, _, err = run(capsys, "explain", "features", trained, "--layers", "fc")
    assert_one_line_error(code, err, "not a feature map")


