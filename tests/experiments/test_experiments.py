"""`dcv experiment ...` and `dcv bench architectures` end to end, on small synthetic data and tiny models.

These check that each experiment trains its variants, writes results.json, the figure and a verdict made
from the measured numbers; the course's claims themselves are measured at full size (docs/results.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcvkit.cli.main import main

FAST = ["--no-progress", "--seed", "0"]


def _results(kind: str) -> dict:
    return json.loads(Path(f"runs/experiment/{kind}/exp/results.json").read_text())


def _check_outputs(kind: str, figure: str) -> dict:
    res = _results(kind)
    out = Path(f"runs/experiment/{kind}/exp")
    assert (out / figure).stat().st_size > 1000 and (out / "config.yaml").is_file()
    assert res["verdict"] in (out / "verdict.md").read_text()
    return res


def test_dropout_experiment(idx_dir, capsys):
    assert main(["experiment", "dropout", "--data-dir", str(idx_dir), "--model", "cnn_tiny", "--per-class", "10",
                 "--epochs", "2", *FAST]) == 0
    res = _check_outputs("dropout", "dropout.png")
    a, b = res["rows"]
    assert (a["dropout"], b["dropout"]) == (0.0, 0.5) and a["gap"] == pytest.approx(a["train_acc"] - a["test_acc"])
    # the verdict quotes the measured numbers
    assert f"{a['test_acc']:.4f}" in res["verdict"] and f"{b['train_acc']:.4f}" in res["verdict"]
    assert "train/test gap" in capsys.readouterr().out


def test_augmentation_experiment(idx_dir):
    assert main(["experiment", "augmentation", "--data-dir", str(idx_dir), "--model", "cnn_tiny", "--per-class", "10",
                 "--epochs", "2", "--augment", "width_shift_range=0.3, horizontal_flip=true", *FAST]) == 0
    res = _check_outputs("augmentation", "augmentation.png")
    a, b = res["rows"]
    assert (a["augment"], b["augment"]) == (None, "width_shift_range=0.3, horizontal_flip=true")
    assert b["gap"] == pytest.approx(b["train_acc"] - b["test_acc"]) and 0 <= b["augmented_test_acc"] <= 1
    assert f"{a['gap'] * 100:.1f} points" in res["verdict"] and f"{b['augmented_test_acc']:.4f}" in res["verdict"]
    cfg = Path("runs/experiment/augmentation/exp/augmentation/config.yaml").read_text()
    assert "width_shift_range=0.3" in cfg  # the variant's own run saved its augmentation


def test_lr_annealing_experiment(idx_dir):
    assert main(["experiment", "lr-annealing", "--data-dir", str(idx_dir), "--model", "cnn_tiny", "--limit", "200",
                 "--epochs", "3", *FAST]) == 0
    rows = _check_outputs("lr-annealing", "lr-annealing.png")["rows"]
    assert [r["schedule"] for r in rows] == ["constant", "step", "cosine"]
    const, step, cos = (r["final_lr"] for r in rows)
    assert const == pytest.approx(0.1) and step < 0.1 and cos < 1e-3


def test_plain_vs_residual_experiment(idx_dir):
    assert main(["experiment", "plain-vs-residual", "--data-dir", str(idx_dir), "--models", "plain20,resnet20",
                 "--limit", "128", "--epochs", "2", "--width", "0.25", *FAST]) == 0
    rows = _check_outputs("plain-vs-residual", "plain-vs-residual.png")["rows"]
    assert [r["model"] for r in rows] == ["plain20", "resnet20"] and all(len(r["train_err_per_epoch"]) == 2 for r in rows)


def test_transfer_experiment(idx_dir):
    assert main(["experiment", "transfer", "--data-dir", str(idx_dir), "--model", "cnn_tiny", "--per-class", "5",
                 "--pretrain-epochs", "1", "--epochs", "2", *FAST]) == 0
    res = _check_outputs("transfer", "transfer.png")
    assert [r["variant"] for r in res["rows"]] == ["scratch", "frozen features", "fine-tuning",
                                                   "fine-tuning, backbone lr x0.1"]
    assert all(r["train_images"] == 25 for r in res["rows"]) and 0 <= res["pretrain_test_acc"] <= 1


def test_kl_annealing_experiment(idx_dir):
    assert main(["experiment", "kl-annealing", "--data-dir", str(idx_dir), "--limit", "240", "--epochs", "2",
                 "--latent-dim", "8", "--nll-images", "20", "--fid-samples", "200", *FAST]) == 0
    res = _check_outputs("kl-annealing", "kl-annealing.png")
    assert [r["schedule"] for r in res["rows"]] == ["none", "linear", "cyclical"]
    for r in res["rows"]:
        assert r["neg_elbo"] == pytest.approx(r["reconstruction"] + r["kl"], abs=0.02)
        assert f"-ELBO {r['neg_elbo']:.2f}" in res["verdict"]
    # each variant's steps.csv has its schedule's weights: none is 1 from the first step, linear starts at 0
    import csv

    first = {s: float(next(csv.DictReader(open(f"runs/experiment/kl-annealing/exp/{s}/steps.csv")))["kl_weight"])
             for s in ("none", "linear", "cyclical")}
    assert first == {"none": 1.0, "linear": 0.0, "cyclical": 0.0}


def test_gan_loss_experiment(idx_dir):
    assert main(["experiment", "gan-loss", "--data-dir", str(idx_dir), "--limit", "240", "--epochs", "2",
                 "--early-steps", "3", "--fid-samples", "200", "--fid-epoch-samples", "100", *FAST]) == 0
    res = _check_outputs("gan-loss", "gan-loss.png")
    mm, ns = res["rows"]
    assert (mm["loss"], ns["loss"]) == ("minimax", "non_saturating") and len(mm["fid_by_epoch"]) == 2
    assert "larger" in res["verdict"] or "smaller" in res["verdict"]
    assert f"{mm['early_g_grad_norm']:.3g}" in res["verdict"]


