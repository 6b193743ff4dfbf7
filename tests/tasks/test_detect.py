"""End to end on FashionScenes (real Fashion-MNIST items): dcv detect train | val | predict for the six
detectors, tiny settings; dcv export of a YOLO and a classifier; dcv bench proposals and detect."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, missing, run

pytestmark = pytest.mark.data

TINY = ["--scenes", "40", "--test-scenes", "6", "--epochs", "1", "--batch-size", "8", "--backbone", "cnn_tiny",
        "--no-progress", "--no-tensorboard", "--max-proposals", "200", "--lr", "0.005"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run per detector (module-scoped: trained once for every test here)."""
    from dcvkit.data import named

    if named.find("fashion-mnist") is None:
        missing("Fashion-MNIST not found (install dataset-fashion-mnist: make setup)")
    from dcvkit.cli.main import main

    root = tmp_path_factory.mktemp("detect")
    out = {}
    for model, extra in (("fast_rcnn", []), ("rcnn", ["--crop-size", "24", "--svm-images", "20"]),
                         ("sliding_window", ["--crop-size", "24", "--window-stride", "16"]), ("faster_rcnn", []),
                         ("yolo_v1", ["--width", "0.5"]), ("yolo", ["--width", "0.5"])):
        assert main(["detect", "train", "--model", model, "--project", str(root), "--name", model, *TINY, *extra]) == 0
        out[model] = root / "detect" / model
    return out


ALL = ["fast_rcnn", "rcnn", "sliding_window", "faster_rcnn", "yolo_v1", "yolo"]


@pytest.mark.parametrize("model", ALL)
def test_train_writes_a_complete_run(runs, model):
    d = runs[model]
    for f in ("config.yaml", "best.pt", "last.pt", "metrics.csv", "curves.png", "results.json", "pr_curves.png",
              "predictions.png"):
        assert (d / f).is_file(), f
    r = json.loads((d / "results.json").read_text())
    assert r["model"] == model and r["images"] == 6 and 0 <= r["map"] <= r["map50"] <= 1
    assert r["network_s_per_image"] > 0 and len(r["per_class"]) == 10
    assert (r["proposal_s_per_image"] > 0) == (model in ("rcnn", "fast_rcnn"))  # windows: computed once
    assert r["proposals"] == {"faster_rcnn": "rpn", "yolo": "none", "yolo_v1": "none",
                              "sliding_window": "sliding_window"}.get(model, "selective_search")
    metrics = (d / "metrics.csv").read_text()
    assert ("val_acc" in metrics) == (model not in ("yolo", "yolo_v1"))
    assert ("val_map50" in metrics) == (model not in ("rcnn", "sliding_window"))
    if model == "faster_rcnn":
        assert "train_rpn_obj_loss" in metrics and "train_rpn_box_loss" in metrics
    if model.startswith("yolo"):
        assert "train_box_loss" in metrics and "train_obj_loss" in metrics and "train_cls_loss" in metrics


def test_rcnn_fitted_its_svms(runs):
    import torch

    ckpt = torch.load(runs["rcnn"] / "best.pt", weights_only=True)
    assert bool(ckpt["model"]["svm_fitted"]) and ckpt["meta"]["svm"]["positives"] > 0
    assert ckpt["model"]["svm.weight"].abs().sum() > 0


def test_val_prints_the_coco_summary(runs, capsys, tmp_path):
    code, out, _ = run(capsys, "detect", "val", str(runs["fast_rcnn"]), "--out", str(tmp_path / "v"))
    assert code == 0
    assert "AP @[IoU=0.50:0.95 | area=all | maxDets=100]" in out and "AR @[IoU=0.50:0.95 | maxDets=100]" in out
    assert "seconds per image: proposals" in out
    at_train = json.loads((runs["fast_rcnn"] / "results.json").read_text())
    again = json.loads((tmp_path / "v" / "results.json").read_text())
    assert again["map"] == at_train["map"] and again["per_class"] == at_train["per_class"]  # deterministic
    code, out, _ = run(capsys, "detect", "val", str(runs["rcnn"]), "--backend", "pycocotools")
    assert code == 0 and "(pycocotools)" in out


@pytest.mark.parametrize("model", ["fast_rcnn", "yolo"])
def test_predict_on_another_size_draws_in_original_coordinates(runs, capsys, tmp_path, model):
    from dcvkit.data import named
    from dcvkit.data.scenes import SceneConfig, fashion_scenes

    _, test = named.load("fashion-mnist")
    scene = fashion_scenes(test, 1, SceneConfig(), seed=5).images[0].permute(1, 2, 0).numpy()
    big = Image.fromarray(scene).resize((200, 160))
    big.save(tmp_path / "scene.png")
    code, out, _ = run(capsys, "detect", "predict", str(runs[model]), str(tmp_path / "scene.png"),
                       "--out", str(tmp_path / "p"), "--score-thresh", "0.0")
    assert code == 0 and "scene_detections.png" in out
    png = Image.open(tmp_path / "p" / "scene_detections.png")
    assert png.size[0] / png.size[1] == pytest.approx(200 / 160)
    preds = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert preds and all(d["file"].endswith("scene.png") for d in preds)
    xs = np.array([d["bbox"] for d in preds])
    assert (xs[:, 0] >= 0).all() and (xs[:, 0] + xs[:, 2] <= 200 + 1e-3).all() and (xs[:, 1] + xs[:, 3] <= 160 + 1e-3).all()
    assert (xs[:, 0] + xs[:, 2]).max() > 128 or len(xs) < 3


def test_predict_at_another_input_size(runs, capsys, tmp_path):
    """--img-size letterboxes to a bigger square (objects keep their scale); yolo_v1's grid cannot."""
    Image.fromarray(np.full((160, 300, 3), 90, dtype=np.uint8)).save(tmp_path / "wide.png")
    code, out, err = run(capsys, "detect", "predict", str(runs["yolo"]), str(tmp_path / "wide.png"), "--img-size",
                         "300", "--out", str(tmp_path / "p"), "--score-thresh", "0.0")
    assert code == 0, err
    xs = np.array([d["bbox"] for d in json.loads((tmp_path / "p" / "predictions.json").read_text())]).reshape(-1, 4)
    assert (xs[:, 0] >= 0).all() and (xs[:, 0] + xs[:, 2] <= 300 + 1e-3).all() and (xs[:, 1] + xs[:, 3] <= 160 + 1e-3).all()
    code, _, err = run(capsys, "detect", "predict", str(runs["yolo_v1"]), str(tmp_path / "wide.png"), "--img-size", "256")
    assert_one_line_error(code, err, "--img-size 256", "yolo_v1 only takes 128x128 images")


def test_checkpoint_of_another_task_is_refused(runs, capsys, tmp_path):
    import torch

    from dcvkit.io import save_checkpoint

    save_checkpoint(tmp_path / "seg.pt", {"model": {}, "meta": {"task": "segment"}})
    code, _, err = run(capsys, "detect", "val", str(tmp_path / "seg.pt"))
    assert_one_line_error(code, err, "seg.pt", "a segment checkpoint")
    assert torch  # noqa: B018


def test_bench_proposals(capsys, tmp_path, fashion_mnist):
    code, out, _ = run(capsys, "bench", "proposals", "--scenes", "6", "--modes", "fast", "--tops", "10,100",
                       "--project", str(tmp_path), "--no-progress", "--workers", "1")
    assert code == 0 and "selective search (fast)" in out and "sliding windows" in out
    bench = json.loads(next((tmp_path / "bench" / "proposals").glob("*/bench.json")).read_text())
    fast = bench["rows"][0]
    assert fast["seconds_per_image"] > 0
    assert 0 < fast["recall"]["10"]["0.5"] <= fast["recall"]["100"]["0.5"] <= 1
    assert fast["recall"]["100"]["0.7"] <= fast["recall"]["100"]["0.5"]


def test_train_on_annotation_files(capsys, tmp_path, fashion_mnist):
    """User data: COCO JSON for training, YOLO data.yaml as the test split (same classes, written by
    dcv data scenes), images resized on load."""
    for fmt, split, n in (("coco", "train", "24"), ("yolo", "test", "6")):
        code, _, _ = run(capsys, "data", "scenes", "--out", str(tmp_path / fmt), "--format", fmt, "--n", n,
                         "--split", split, "--size", "96")
        assert code == 0
    code, out, err = run(capsys, "detect", "train", "--data", str(tmp_path / "coco" / "annotations.json"),
                         "--test-data", str(tmp_path / "yolo" / "data.yaml"), "--img-size", "64", "--epochs", "1",
                         "--backbone", "cnn_tiny", "--no-progress", "--no-tensorboard", "--project", str(tmp_path / "r"))
    assert code == 0, err
    r = json.loads((tmp_path / "r" / "detect" / "exp" / "results.json").read_text())
    assert r["images"] == 6 and r["objects"] > 0
    code, out, _ = run(capsys, "detect", "val", str(tmp_path / "r" / "detect" / "exp"), "--data",
                       str(tmp_path / "yolo" / "data.yaml"))
    assert code == 0 and "6 images" in out


def test_yolo_yaml_without_test_split_is_scored_on_val_and_says_so(capsys, tmp_path, fashion_mnist):
    """Issue 29: a data.yaml naming only train and val gives a test figure (on val), with a warning saying it
    leans optimistic, instead of none (the user had to pass the same file as --test-data)."""
    import yaml

    for split, n, seed in (("train", "16", "0"), ("val", "6", "1")):
        assert run(capsys, "data", "scenes", "--out", str(tmp_path / "ds" / split), "--format", "yolo", "--n", n,
                   "--seed", seed, "--size", "64")[0] == 0
    spec = yaml.safe_load((tmp_path / "ds" / "train" / "data.yaml").read_text())
    spec.update(path=".", train="train/images", val="val/images")
    (tmp_path / "ds" / "data.yaml").write_text(yaml.safe_dump(spec))
    with pytest.warns(UserWarning, match=r"no test split, so the test figures are measured on the validation "
                                         r"split \(6 images\)"):
        code, out, err = run(capsys, "detect", "train", "--data", str(tmp_path / "ds" / "data.yaml"), "--epochs",
                             "1", "--backbone", "cnn_tiny", "--no-progress", "--no-tensorboard", "--project",
                             str(tmp_path / "r"))
    assert code == 0, err
    r = json.loads((tmp_path / "r" / "detect" / "exp" / "results.json").read_text())
    assert r["split"] == "val" and r["images"] == 6


def test_bench_detect_side_by_side(runs, capsys, tmp_path):
    spec = ",".join(f"{m}={d}" for m, d in runs.items())
    code, out, _ = run(capsys, "bench", "detect", "--runs", spec, "--scenes", "20", "--test-scenes", "6",
                       "--timing-images", "3", "--project", str(tmp_path), "--no-progress")
    assert code == 0 and "fast_rcnn runs its network" in out and "yolo runs" in out and "a learned proposer" in out
    bench = json.loads(next((tmp_path / "bench" / "detect").glob("*/bench.json")).read_text())
    rows = {r["model"]: r for r in bench["rows"]}
    assert set(rows) == set(ALL) | {"yolo (onnxruntime)", "yolo_v1 (onnxruntime)"}
    ort, pt = rows["yolo (onnxruntime)"], rows["yolo"]
    assert ort["map50"] == pytest.approx(pt["map50"], abs=0.02) and ort["params"] == pt["params"]
    assert rows["rcnn"]["network_speedup_vs_rcnn"] == 1.0 == rows["rcnn"]["total_speedup_vs_rcnn"]
    for r in rows.values():
        assert r["network_s_per_image"] > 0 and 0 <= r["map"] <= r["map50"] <= 1 and r["params"] > 0
        assert r["total_s_per_image"] == r["network_s_per_image"] + r["proposal_s_per_image"]
        assert r["total_speedup_vs_rcnn"] == pytest.approx(rows["rcnn"]["total_s_per_image"] / r["total_s_per_image"])
    assert rows["fast_rcnn"]["proposal_s_per_image"] > 0
    assert rows["faster_rcnn"]["proposal_s_per_image"] == rows["yolo"]["proposal_s_per_image"] == 0
    assert len(bench["verdicts"]) == 11  # fast vs rcnn, windows, RPN, 4 YOLO rows x (vs rcnn, vs faster_rcnn)
    assert "| yolo |" in (tmp_path / "bench" / "detect" / "exp" / "table.md").read_text()
    assert (tmp_path / "bench" / "detect" / "exp" / "speeds.png").is_file()


@pytest.mark.parametrize("model", ["yolo", "yolo_v1"])
def test_export_yolo_to_onnx_gives_the_same_boxes(runs, capsys, model):
    code, out, err = run(capsys, "export", str(runs[model]), "--format", "onnx", "--check", "6")
    assert code == 0, err
    assert (runs[model] / f"{model}.onnx").is_file() and "same boxes and classes: True" in out
    r = json.loads((runs[model] / f"{model}.json").read_text())
    assert r["ok"] and r["same_detections"] and r["check_images"] == 6 and r["max_abs_diff"]["scores"] < 1e-3
    assert not list(runs[model].glob("*.tmp*"))


def test_export_a_classifier_and_refuse_region_detectors(runs, capsys, tmp_path, fashion_mnist):
    code, _, err = run(capsys, "classify", "train", "--model", "cnn_tiny", "--limit", "300", "--epochs", "1",
                       "--no-progress", "--no-tensorboard", "--project", str(tmp_path))
    assert code == 0, err
    code, out, err = run(capsys, "export", str(tmp_path / "classify" / "exp"), "--out", str(tmp_path / "c.onnx"))
    assert code == 0, err
    r = json.loads((tmp_path / "c.json").read_text())
    assert r["ok"] and r["same_top1"] and r["outputs"] == ["probs"] and r["max_abs_diff"]["probs"] < 1e-4
    code, _, err = run(capsys, "export", str(runs["fast_rcnn"]))
    assert_one_line_error(code, err, "fast_rcnn is not exportable")
