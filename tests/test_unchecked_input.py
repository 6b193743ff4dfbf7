"""Issue 23's cases, each through the CLI: an option out of its declared range, a run name that is a path, a
checkpoint whose meta or training state is not what dcvkit writes, YAML and JSON that expand or nest without
bound, and the files and folders that used to train without a word. Every one: exit code 2, one line naming
the option, file or field, no traceback, nothing written. And ``--resume RUN --epochs N`` extends a run."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import assert_one_line_error, quick_args, run, write_mask_pairs, write_png_folder

# --- options ---------------------------------------------------------------------------------------------

OPTION_CASES = [  # (flag, value, what the line must say): the tester's list
    ("--batch-size", "0", "--batch-size must be >= 1"), ("--batch-size", "-3", "--batch-size must be >= 1"),
    ("--seed", "99999999999999999999", "--seed must be in [0, 4294967295]"),
    ("--momentum", "-2", "--momentum must be in [0, 1)"), ("--dropout", "1.5", "--dropout must be in [0, 1)"),
    ("--label-smoothing", "2", "--label-smoothing must be in [0, 1)"), ("--epochs", "0", "--epochs must be >= 1"),
    ("--epochs", "-1", "--epochs must be >= 1"), ("--max-time", "-1", "--max-time must be > 0"),
    ("--devices", "0", "--devices must be in [1, 1024]"), ("--devices", "-1", "--devices must be in [1, 1024]"),
    ("--workers", "-1", "--workers must be in [0, 64]"), ("--patience", "-1", "--patience must be >= 0"),
    ("--width", "0", "--width must be in (0, 16]"), ("--limit", "0", "--limit must be >= 1"),
    ("--limit", "-5", "--limit must be >= 1"),
    ("--name", "../../escape", "--name must be a plain folder name"),
    ("--name", "/abs/path", "--name must be a plain folder name"),
]


@pytest.mark.parametrize("flag,value,says", OPTION_CASES, ids=[f"{f}={v}" for f, v, _ in OPTION_CASES])
def test_option_out_of_range(flag, value, says, tmp_path, capsys):
    code, _, err = run(capsys, "classify", "train", f"{flag}={value}", "--project", str(tmp_path / "p"))
    assert_one_line_error(code, err, says)
    assert not (tmp_path / "p").exists() and not Path("/abs/path").exists()
    assert not (tmp_path.parent / "escape").exists()


def test_the_same_declaration_checks_a_config_file_a_tune_space_and_the_python_api(tmp_path, capsys):
    from dcvkit.errors import ConfigError
    from dcvkit.tasks import get_task

    (tmp_path / "c.yaml").write_text("batch_size: 0\n")
    code, _, err = run(capsys, "classify", "train", "--config", str(tmp_path / "c.yaml"))
    assert_one_line_error(code, err, "c.yaml: 'batch_size' must be >= 1, got 0")
    (tmp_path / "s.yaml").write_text("dropout: {type: float, low: 0.1, high: 1.5}\n")
    code, _, err = run(capsys, "tune", "--space", str(tmp_path / "s.yaml"), "--project", str(tmp_path / "p"))
    assert_one_line_error(code, err, "s.yaml (search space): 'dropout' must be in [0, 1), got 1.5")
    with pytest.raises(ConfigError, match="'epochs' must be >= 1, got 0"):
        get_task("classify").train(get_task("classify").config(epochs=0, project=str(tmp_path / "p")))
    assert not (tmp_path / "p").exists()


def test_detection_thresholds_that_contradict_each_other(capsys):
    code, _, err = run(capsys, "detect", "train", "--fg-iou", "0.4", "--bg-iou", "0.6")
    assert_one_line_error(code, err, "bg_iou 0.6 is above fg_iou 0.4")


def test_options_are_not_abbreviated_and_suggestions_are_the_subcommands_own(capsys):
    code, _, err = run(capsys, "classify", "train", "--epoch", "1")
    assert_one_line_error(code, err, "unrecognized arguments: --epoch", "did you mean --epochs?",
                          "see dcv classify train --help")
    code, _, err = run(capsys, "classify", "train", "--lr-sched", "cosine")
    line = assert_one_line_error(code, err, "see dcv classify train --help")
    assert "--kl-schedule" not in line  # an option of dcv generate train, not of this command
    code, _, err = run(capsys, "classify", "train", "--modle", "cnn")
    assert_one_line_error(code, err, "did you mean --model?")


def test_every_parser_refuses_abbreviations():
    import argparse

    from dcvkit.cli.main import build_parser

    def parsers(p):
        yield p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    yield from parsers(sub)

    found = list(parsers(build_parser()))
    assert len(found) > 40 and all(not p.allow_abbrev for p in found)


def test_a_project_that_cannot_be_written(png_folder, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    data = ["--data", str(png_folder), *quick_args()]
    code, _, err = run(capsys, "classify", "train", *data, "--project", str(blocker / "p"))
    assert_one_line_error(code, err, "cannot create a run directory there", "choose a writable --project")
    if os.geteuid() != 0:  # root writes through permissions; the case above takes the same path
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        code, _, err = run(capsys, "classify", "train", *data, "--project", str(ro))
        assert_one_line_error(code, err, "cannot create a run directory there")


# --- YAML and JSON ---------------------------------------------------------------------------------------

LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 7))


@pytest.mark.parametrize("where", ["config", "augment"])
def test_billion_laughs_under_a_valid_key(where, tmp_path, capsys):
    key = "data" if where == "config" else "rotation_range"
    path = tmp_path / "laughs.yaml"
    path.write_text("l0: &l0 [lol]\n" + LAUGHS + f"{key}: *l6\n")  # 10^6 values from 700 bytes
    code, _, err = run(capsys, "classify", "train", f"--{where}", str(path))
    assert_one_line_error(code, err, "laughs.yaml: YAML that expands to more than 100,000 values")


def test_recursive_and_deep_yaml(tmp_path, capsys):
    (tmp_path / "r.yaml").write_text("data: &a [*a]\n")
    code, _, err = run(capsys, "classify", "train", "--config", str(tmp_path / "r.yaml"))
    assert_one_line_error(code, err, "r.yaml: a YAML alias refers to the node that holds it")
    (tmp_path / "d.yaml").write_text("data: " + "[" * 100_000 + "]" * 100_000 + "\n")
    code, _, err = run(capsys, "classify", "train", "--config", str(tmp_path / "d.yaml"))
    assert_one_line_error(code, err, "d.yaml: YAML nested")


def test_annotations_json_nested_100000_deep(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations.json").write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run(capsys, "detect", "train", "--data", str(tmp_path / "annotations.json"))
    assert_one_line_error(code, err, "annotations.json: JSON nested too deeply")


def test_classes_yaml_as_a_plain_list_as_the_docs_show(tmp_path, capsys):
    data = write_mask_pairs(tmp_path / "seg", n=6, size=24)
    (data / "classes.yaml").write_text("[background, person, bicycle]\n")
    code, _, err = run(capsys, "segment", "train", "--data", str(data), "--epochs", "1", "--batch-size", "4",
                       "--base", "4", "--depth", "2", "--no-progress", "--no-tensorboard")
    assert code == 0, err
    meta = torch.load("runs/segment/exp/best.pt", weights_only=True)["meta"]
    assert meta["classes"] == ["background", "person", "bicycle"]


# --- data that trained without a word -------------------------------------------------------------------


def test_an_empty_class_folder(tmp_path, capsys):
    root = write_png_folder(tmp_path / "imgs")
    (root / "zebra").mkdir()
    code, _, err = run(capsys, "classify", "train", "--data", str(root), *quick_args())
    assert_one_line_error(code, err, "zebra: class folder 'zebra' holds no images")
    assert not Path("runs").exists()


@pytest.mark.parametrize("images", [1, 6])
def test_a_dataset_of_one_class(images, tmp_path, capsys):
    root = tmp_path / "one" / "cat"
    root.mkdir(parents=True)
    for i in range(images):
        Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(root / f"{i}.png")
    code, _, err = run(capsys, "classify", "train", "--data", str(root.parent), *quick_args())
    assert_one_line_error(code, err, "only one class (cat)", "at least two")
    assert not Path("runs").exists()


def test_a_box_a_trillion_pixels_wide(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "images/a.png", "width": 40, "height": 30}],
        "annotations": [{"id": 9, "image_id": 1, "category_id": 1, "bbox": [-1e9, -1e9, 1e12, 1e12]}],
        "categories": [{"id": 1, "name": "shirt"}]}))
    code, _, err = run(capsys, "data", "convert", str(tmp_path / "annotations.json"), "--to", "yolo", "--out",
                       str(tmp_path / "o"))
    assert_one_line_error(code, err, "annotation 9", "reaches more than the image's own size beyond the 40x30 image")


# --- checkpoints -----------------------------------------------------------------------------------------


@pytest.fixture
def classify_run(png_folder, capsys) -> Path:
    code, _, err = run(capsys, "classify", "train", "--data", str(png_folder), *quick_args("--epochs", "1"))
    assert code == 0, err
    return Path("runs/classify/exp")


def _mutated(src: Path, dst: Path, change) -> Path:
    ckpt = torch.load(src, weights_only=True)
    change(ckpt)
    torch.save(ckpt, dst)
    return dst


def _set(path: str, value):
    def change(ckpt):
        *parents, last = path.split(".")
        d = ckpt
        for p in parents:
            d = d[p]
        if value is KeyError:
            del d[last]
        else:
            d[last] = value
    return change


META_CASES = [  # (what the tester did, the change, what the line must name)
    ("meta is a list", _set("meta", [1, 2]), "not a dcvkit checkpoint"),
    ("no model", _set("meta.model", KeyError), "meta 'model' must be a model name"),
    ("no model_kwargs", _set("meta.model_kwargs", KeyError), "meta 'model_kwargs' must be a mapping"),
    ("mean abc", _set("meta.mean", "abc"), "meta 'mean' must be a list"),
    ("no classes", _set("meta.classes", []), "meta 'classes' must be a list of 1 to 10000"),
    ("num_classes -5", _set("meta.model_kwargs.num_classes", -5), "'model_kwargs.num_classes' must be a whole"),
    ("num_classes 1e9", _set("meta.model_kwargs.num_classes", 10**9), "'model_kwargs.num_classes' must be a whole"),
    ("an option the model lacks", _set("meta.model_kwargs.depth", 3), "'model_kwargs.depth' is not an option"),
]


@pytest.mark.parametrize("what,change,says", META_CASES, ids=[c[0] for c in META_CASES])
def test_checkpoint_meta_is_checked_before_a_model_is_built(what, change, says, classify_run, png_folder, capsys):
    bad = _mutated(classify_run / "best.pt", Path("bad.pt"), change)
    image = str(next(png_folder.rglob("*.png")))
    code, _, err = run(capsys, "classify", "predict", str(bad), image)
    assert_one_line_error(code, err, "bad.pt", says)


def test_shapes_are_compared_before_anything_is_allocated(classify_run, png_folder, capsys, monkeypatch):
    """num_classes 9000 passes the range but not the weights' shapes: refused while the model exists only on
    the meta device (no model is built for real: create_model is watched)."""
    import dcvkit.models.trained as trained

    built = []
    real = trained.create_model
    monkeypatch.setattr(trained, "create_model",
                        lambda *a, **k: built.append(torch.get_default_device()) or real(*a, **k))
    bad = _mutated(classify_run / "best.pt", Path("bad.pt"), _set("meta.model_kwargs.num_classes", 9000))
    bad = _mutated(bad, bad, _set("meta.classes", [f"c{i}" for i in range(9000)]))
    code, _, err = run(capsys, "classify", "predict", str(bad), str(next(png_folder.rglob("*.png"))))
    assert_one_line_error(code, err, "bad.pt: weights do not fit model 'cnn_tiny'", "the meta's model has (9000")
    assert built == [torch.device("meta")]


def test_nan_weights_are_refused(classify_run, png_folder, capsys):
    def nan(ckpt):
        ckpt["model"] = {k: v * float("nan") if v.is_floating_point() else v for k, v in ckpt["model"].items()}

    bad = _mutated(classify_run / "best.pt", Path("nan.pt"), nan)
    code, _, err = run(capsys, "classify", "predict", str(bad), str(next(png_folder.rglob("*.png"))))
    assert_one_line_error(code, err, "nan.pt: weight", "holds NaN or infinite values")


def test_a_zip_bomb_is_refused_before_it_is_inflated(classify_run, png_folder, capsys):
    with zipfile.ZipFile(classify_run / "best.pt") as z, \
            zipfile.ZipFile("bomb.pt", "w", compression=zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            out.writestr(info.filename, z.read(info.filename))
    code, _, err = run(capsys, "classify", "predict", "bomb.pt", str(next(png_folder.rglob("*.png"))))
    assert_one_line_error(code, err, "bomb.pt: entry", "is compressed")


# --- resume ----------------------------------------------------------------------------------------------


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


@pytest.mark.parametrize("scheduler", ["step", "exponential", "none"])
def test_resume_extends_a_finished_run_bit_for_bit(scheduler, png_folder, capsys):
    common = ["--data", str(png_folder), *quick_args("--scheduler", scheduler, "--deterministic")]
    assert run(capsys, "classify", "train", *common, "--epochs", "3", "--name", "full")[0] == 0
    assert run(capsys, "classify", "train", *common, "--epochs", "1", "--name", "short")[0] == 0
    code, _, err = run(capsys, "classify", "train", "--resume", "runs/classify/short", "--epochs", "3")
    assert code == 0, err
    full, extended = _weights(Path("runs/classify/full")), _weights(Path("runs/classify/short"))
    assert all(torch.equal(full[k], extended[k]) for k in full)
    assert yaml.safe_load(Path("runs/classify/short/config.yaml").read_text())["epochs"] == 3
    assert len(Path("runs/classify/short/metrics.csv").read_text().splitlines()) == 1 + 3


def test_resume_rebuilds_a_one_cycle_schedule_for_the_new_length(png_folder, capsys):
    assert run(capsys, "classify", "train", "--data", str(png_folder), *quick_args("--epochs", "1"))[0] == 0
    with pytest.warns(UserWarning, match="the onecycle schedule is rebuilt for 2 epochs"):
        code, _, err = run(capsys, "classify", "train", "--resume", "runs/classify/exp", "--epochs", "2")
    assert code == 0, err
    rows = Path("runs/classify/exp/metrics.csv").read_text().splitlines()
    assert len(rows) == 3  # header + 2 epochs
    assert torch.load("runs/classify/exp/last.pt", weights_only=True)["epoch"] == 2


def test_config_yaml_changes_only_with_the_first_new_checkpoint(png_folder, capsys, monkeypatch):
    from dcvkit.engine.loop import Trainer
    from dcvkit.errors import DcvError

    assert run(capsys, "classify", "train", "--data", str(png_folder), *quick_args("--epochs", "1"))[0] == 0
    before = {p.name: p.read_bytes() for p in Path("runs/classify/exp").iterdir() if p.is_file()}

    def fails(self, *a, **k):
        raise DcvError("the machine fell over")

    monkeypatch.setattr(Trainer, "_run_epoch", fails)
    code, _, err = run(capsys, "classify", "train", "--resume", "runs/classify/exp", "--epochs", "3")
    assert_one_line_error(code, err, "the machine fell over")
    after = {p.name: p.read_bytes() for p in Path("runs/classify/exp").iterdir() if p.is_file()}
    assert after == before  # config.yaml still says 1 epoch, as last.pt does


def test_resume_with_fewer_epochs_than_done(png_folder, capsys):
    assert run(capsys, "classify", "train", "--data", str(png_folder), *quick_args("--epochs", "2"))[0] == 0
    code, _, err = run(capsys, "classify", "train", "--resume", "runs/classify/exp", "--epochs", "1")
    assert_one_line_error(code, err, "--epochs 1", "has trained 2 epochs already")


def _rng_wrong_size(ckpt):
    ckpt["rng"]["torch"] = ckpt["rng"]["torch"][:100]


RESUME_CASES = [
    ("config a string", _set("config", "epochs: 3"), "not a resumable dcvkit checkpoint"),
    ("rng missing", _set("rng", KeyError), "'rng' must be a dict"),
    ("rng the wrong size", _rng_wrong_size, "'rng' must hold torch's generator state"),
    ("negative epoch", _set("epoch", -1), "'epoch' must be the epochs completed"),
    ("empty optimizer", _set("optimizer", {}), "'optimizer' must hold its state and at least one parameter group"),
    ("optimizer of another model", _set("optimizer.param_groups", [{"params": [0], "lr": 0.1}]),
     "its 'optimizer' does not fit this run"),
    ("position without sums", _set("position", {"step": 1, "seen": 32, "seconds": 0.1}), "'position' must be"),
]


@pytest.mark.parametrize("what,change,says", RESUME_CASES, ids=[c[0] for c in RESUME_CASES])
def test_a_crafted_last_pt(what, change, says, classify_run, capsys):
    _mutated(classify_run / "last.pt", classify_run / "last.pt", change)
    code, _, err = run(capsys, "classify", "train", "--resume", str(classify_run), "--epochs", "2")
    assert_one_line_error(code, err, says)


def test_resume_names_a_run_of_another_task(tmp_path, capsys):
    data = write_mask_pairs(tmp_path / "seg", n=6, size=24)
    code, _, err = run(capsys, "segment", "train", "--data", str(data), "--epochs", "1", "--batch-size", "4",
                       "--base", "4", "--depth", "2", "--no-progress", "--no-tensorboard")
    assert code == 0, err
    code, _, err = run(capsys, "classify", "train", "--resume", "runs/segment/exp")
    line = assert_one_line_error(code, err, "this is a segment run, not a classify one",
                                 "dcv segment train --resume runs/segment/exp")
    assert len(line) < 250
