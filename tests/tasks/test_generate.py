"""``dcv generate`` end to end on a small synthetic Fashion-MNIST-format dataset: train each model, evaluate
offline (FID through a dcvkit classifier trained on the same data), every latent-space command writes its
PNGs, bad input gives one-line errors, and a resumed GAN run is bitwise identical to an uninterrupted one;
the GAN task's alternating steps (D's step never moves G, G's never moves D) and the family's defaults."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error
from conftest import run as run_cli
from dcvkit.cli.main import main
from dcvkit.errors import ConfigError
from dcvkit.io import load_checkpoint
from dcvkit.models import create_model


def _train(idx_dir: Path, model: str, *extra: str) -> Path:
    args = ["generate", "train", "--model", model, "--data", "fashion-mnist", "--data-dir", str(idx_dir),
            "--limit", "240", "--epochs", "2", "--batch-size", "60", "--width", "8", "--fid-samples", "200",
            "--fid-epoch-samples", "100", "--nll-samples", "8", "--nll-images", "50", "--no-progress", *extra]
    assert main(args) == 0
    runs = sorted(Path("runs/generate").glob("exp*"), key=lambda p: p.stat().st_mtime)
    return runs[-1]


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("gen")


def _pngs(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.png")}


def test_vae_train_eval_and_latent_tools(idx_dir, capsys):
    run = _train(idx_dir, "vae", "--kl-schedule", "cyclical", "--kl-cycles", "2")
    files = {p.name for p in run.iterdir()}
    assert {"best.pt", "last.pt", "config.yaml", "metrics.csv", "steps.csv", "results.json", "samples.png",
            "coverage.png", "reconstructions.png", "curves.png", "tensorboard", "samples"} <= files
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    r = json.loads((run / "results.json").read_text())
    assert r["nll"] <= r["neg_elbo"] + 1.0 and r["fid_fmnist"] > 0 and r["coverage"]["classes"] == 10
    # the KL weight per step follows the cyclical schedule: 2 cycles over 8 steps, each ramping over half
    steps = list(csv.DictReader(open(run / "steps.csv")))
    assert [round(float(s["kl_weight"]), 3) for s in steps] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
    # the auto FID classifier was trained once and is reused
    judge = Path("runs/generate/fid-classifier-fashion-mnist")
    assert (judge / "best.pt").is_file() and r["fid_classifier"] == str(judge)
    # TensorBoard has the sample grids
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    ea.Reload()
    assert len(ea.Images("samples")) == 2
    out = Path("lat")
    for cmd in (["sample"], ["reconstruct", "-n", "6"], ["interpolate", "--a", "0", "--b", "1", "--method", "both"],
                ["arithmetic", "--plus", "1", "--minus", "2", "--to", "3", "-n", "3", "--group", "5"],
                ["traverse", "--base", "0", "--dims", "0,1,2"]):
        assert main(["generate", cmd[0], str(run), "--out", str(out), *cmd[1:]]) == 0
    assert _pngs(out) == {"samples.png", "reconstructions.png", "interpolate.png", "arithmetic.png", "traverse.png"}
    assert main(["generate", "eval", str(run), "--samples", "100", "--nll-images", "20"]) == 0
    assert "NLL estimate" in capsys.readouterr().out


def test_two_d_vae_draws_its_latent_grid(idx_dir):
    run = _train(idx_dir, "vae", "--latent-dim", "2", "--epochs", "1", "--fid-classifier", "none", "--arch", "mlp",
                 "--hidden", "32")
    assert not (run / "coverage.png").exists()  # no judge, no coverage
    assert main(["generate", "traverse", str(run), "--out", "t", "--grid", "5"]) == 0
    assert _pngs(Path("t")) == {"traverse.png", "latent_grid.png"}
    assert Image.open("t/latent_grid.png").size[0] > 100


def test_cvae_classes_mix_and_label_interpolation(idx_dir):
    run = _train(idx_dir, "cvae", "--epochs", "1")
    r = json.loads((run / "results.json").read_text())
    assert 0 <= r["conditional_accuracy"] <= 1
    assert main(["generate", "sample", str(run), "--out", "a", "--classes", "0,1"]) == 0
    assert main(["generate", "sample", str(run), "--out", "b", "--mix", "0=0.5,1=0.5", "-n", "8"]) == 0
    assert main(["generate", "interpolate", str(run), "--out", "c", "--classes", "0,1", "--pairs", "1"]) == 0
    assert _pngs(Path("a")) == {"samples.png"} and _pngs(Path("c")) == {"interpolate.png", "class_interpolation.png"}


def test_dcgan_trains_with_fid_per_epoch_and_latent_tools(idx_dir, capsys):
    run = _train(idx_dir, "dcgan", "--gan-loss", "minimax", "--d-steps", "2", "--label-smoothing", "0.1")
    hist = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(hist) == 2 and all(float(h["val_fid"]) > 0 for h in hist)
    assert {"train_d_acc", "train_g_grad_norm", "train_d_grad_norm", "val_classes_covered"} <= set(hist[0])
    steps = list(csv.DictReader(open(run / "steps.csv")))
    assert len(steps) == 8 and float(steps[0]["g_grad_norm"]) == 0 < float(steps[1]["g_grad_norm"])  # G: even steps
    r = json.loads((run / "results.json").read_text())
    assert r["fid_fmnist_untrained"] > 0 and "neg_elbo" not in r
    for cmd in (["sample"], ["interpolate", "--method", "linear"], ["traverse"]):
        assert main(["generate", cmd[0], str(run), "--out", "g", *cmd[1:]]) == 0
    assert _pngs(Path("g")) == {"samples.png", "interpolate.png", "traverse.png"}
    # a GAN has no encoder
    code = main(["generate", "reconstruct", str(run)])
    assert_one_line_error(code, capsys.readouterr().err, "needs an encoder", "dcgan")


def test_bad_input_is_one_line(idx_dir, capsys):
    run = _train(idx_dir, "vae", "--epochs", "1", "--fid-classifier", "none")
    cases = [
        (["generate", "sample", str(run), "--mix", "0=1"], "class-conditional"),
        (["generate", "traverse", str(run), "--dims", "x"], "--dims"),
        (["generate", "traverse", str(run), "--dims", "99"], "dimensions 0-19"),
        (["generate", "interpolate", str(run), "--a", "0"], "give both images"),
        (["generate", "interpolate", str(run), "--a", "0", "--b", "999999"], "out of range"),
        (["generate", "reconstruct", str(run), "--images", "nope.png"], "neither a test-set index"),
        (["generate", "train", "--model", "dcgan", "--arch", "mlp"], "--arch is an option of cvae, vae, not of dcgan"),
        (["generate", "train", "--model", "vae", "--kl-schedule", "cyclical", "--kl-ratio", "0"], "--kl-ratio must be in (0, 1]"),
        (["generate", "sample", "runs/nothing"], "nothing"),
    ]
    for args, fragment in cases:
        code, _, err = run_cli(capsys, *args)
        assert_one_line_error(code, err, fragment)


def test_gan_resume_is_bitwise_identical(idx_dir):
    """Two optimizers' worth of Adam state in one optimizer, fixed noise apart from the training RNG: a run cut
    after epoch 1 and resumed ends with the same weights as an uninterrupted one."""
    from dcvkit.tasks.generate import GenerateConfig, train

    base = dict(model="dcgan", data="fashion-mnist", data_dir=str(idx_dir), limit=120, batch_size=40, width=8,
                fid_classifier="none", progress=False, tensorboard=False, test=False)
    full = train(GenerateConfig(epochs=2, name="full", **base))
    cut = train(GenerateConfig(epochs=1, name="cut", **base))
    resumed = train(GenerateConfig(resume=str(cut.run_dir), epochs=2))
    a, b = load_checkpoint(full.run_dir / "last.pt"), load_checkpoint(resumed.run_dir / "last.pt")
    assert b["epoch"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_image_folder_at_another_size(png_folder):
    """An image folder (4 classes, 28x28 PNGs) resized to 32x32: the DCGAN and its auto FID classifier both
    train on it, and the samples come out 32x32."""
    assert main(["generate", "train", "--model", "dcgan", "--data", str(png_folder), "--img-size", "32",
                 "--epochs", "1", "--batch-size", "16", "--width", "8", "--fid-samples", "64",
                 "--fid-epoch-samples", "32", "--no-progress", "--no-tensorboard"]) == 0
    run = Path("runs/generate/exp")
    r = json.loads((run / "results.json").read_text())
    assert r["coverage"]["classes"] == 4 and Path(r["fid_classifier"]).name == "fid-classifier-imgs"
    assert main(["generate", "sample", str(run), "--out", "s", "-n", "4"]) == 0
    # one row of four 32x32 samples, 2-px padding
    assert Image.open("s/samples.png").size == (2 + 4 * 34, 2 + 34)


def test_dcgan_64_on_fashion_mnist_sized_data(idx_dir):
    """--img-size 64 on a named (28x28) dataset: images are resized on the fly and the 64x64 DCGAN (4 -> 64)
    trains; samples come out 64x64."""
    run = _train(idx_dir, "dcgan", "--img-size", "64", "--epochs", "1", "--limit", "60", "--fid-classifier", "none")
    from dcvkit.tasks.generate import load_generator

    model, meta = load_generator(run)
    assert meta["model_kwargs"]["img_size"] == 64 and model.generate(model.prior(2)).shape == (2, 1, 64, 64)
    assert Image.open(run / "samples.png").size == (2 + 8 * 66, 2 + 8 * 66)


def _gan_task(d_steps: int = 1):
    from dcvkit.config import TrainConfig
    from dcvkit.tasks.generate import GANTask, GenerateConfig, resolve_defaults

    torch.manual_seed(0)
    cfg = resolve_defaults(GenerateConfig(model="dcgan", d_steps=d_steps, fid_classifier="none"))
    m = create_model("dcgan", width=8)
    task = GANTask(m, cfg, ["a", "b"], {}, 10)
    task.configure_optimizers(TrainConfig())
    return task


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_gan_step_alternates_players():
    """With --d-steps 2: a D-only step leaves G untouched; a D + G step moves both, and G's update alone
    (replayed) leaves D untouched."""
    task = _gan_task(d_steps=2)
    m = task.model
    batch = (torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8), torch.zeros(8, dtype=torch.long))
    g0, d0 = _snapshot(m.generator), _snapshot(m.discriminator)
    loss, logs = task.training_step(batch)  # step 1: D only
    assert not _changed(g0, m.generator) and _changed(d0, m.discriminator)
    assert float(loss) == 0.0 and float(logs["g_grad_norm"]) == 0.0  # no G step yet
    g1, d1 = _snapshot(m.generator), _snapshot(m.discriminator)
    loss, logs = task.training_step(batch)  # step 2: D and G
    assert _changed(g1, m.generator) and _changed(d1, m.discriminator)
    assert set(logs) >= {"d_loss", "d_acc", "d_fake", "g_grad_norm", "d_grad_norm"} and float(loss) > 0
    assert float(logs["g_grad_norm"]) > 0
    # G's update never moves D: after a G backward, D's grads are dropped before the step
    g2, d2 = _snapshot(m.generator), _snapshot(m.discriminator)
    fake = m.generator(torch.randn(4, m.latent_dim))
    from dcvkit.losses.generative import generator_loss

    task.optimizer.zero_grad(set_to_none=True)
    generator_loss(m.discriminator(fake)).backward()
    for p in task.d_params:
        p.grad = None
    task.optimizer.step()
    assert _changed(g2, m.generator) and not _changed(d2, m.discriminator)


def test_gan_loss_options_are_checked():
    from dcvkit.tasks.generate import GenerateConfig, resolve_defaults

    with pytest.raises(ConfigError, match="--d-steps"):
        resolve_defaults(GenerateConfig(model="dcgan", d_steps=0))
    with pytest.raises(ConfigError, match="--arch is an option of cvae, vae, not of dcgan"):
        resolve_defaults(GenerateConfig(model="dcgan", arch="mlp"))
    cfg = resolve_defaults(GenerateConfig(model="dcgan"))
    assert cfg.lr == 2e-4 and cfg.monitor == "val_fid" and cfg.epochs == 15
    cfg = resolve_defaults(GenerateConfig(model="vae"))
    assert cfg.lr == 1e-3 and cfg.monitor == "val_loss" and cfg.epochs == 20

