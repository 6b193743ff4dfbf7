"""The engine's promises: early stopping, checkpoints, the NaN guard, exact resume."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dcvkit.config import TrainConfig
from dcvkit.engine import Trainer
from dcvkit.errors import TrainingDiverged
from dcvkit.io import load_checkpoint, new_run_dir


class ListLoader(list):
    def set_epoch(self, epoch: int) -> None:
        pass


def _loader(n_batches: int = 4):
    g = torch.Generator().manual_seed(0)
    return ListLoader((torch.randn(8, 4, generator=g), torch.randint(0, 2, (8,), generator=g))
                      for _ in range(n_batches))


class ScriptedTask:
    """A linear model whose validation metric follows a script, and whose loss can turn NaN on cue."""

    def __init__(self, values, monitor="val_acc", nan_after_steps=None):
        torch.manual_seed(0)
        self.model = nn.Linear(4, 2)
        self.values, self.monitor, self.nan_after, self.steps = iter(values), monitor, nan_after_steps, 0

    def configure_optimizers(self, cfg):
        return torch.optim.SGD(self.model.parameters(), lr=cfg.lr)

    def training_step(self, batch):
        x, y = batch
        self.steps += 1
        loss = F.cross_entropy(self.model(x), y)
        if self.nan_after is not None and self.steps > self.nan_after:
            loss = loss * float("nan")
        return loss, {}

    def validation_step(self, batch):
        pass

    def validation_epoch_end(self):
        return {self.monitor: next(self.values)}

    def checkpoint_meta(self):
        return {"task": "scripted"}


def _fit(tmp_path, values, monitor="val_acc", **kw):
    cfg = TrainConfig(epochs=len(values), lr=0.1, scheduler="none", progress=False, tensorboard=False,
                      monitor=monitor, **kw)
    trainer = Trainer(ScriptedTask(values, monitor), cfg, new_run_dir(tmp_path))
    return trainer.fit(_loader(), _loader(1))


def test_early_stopping_patience(tmp_path):
    r = _fit(tmp_path, [0.5, 0.6, 0.6, 0.55, 0.9, 0.9], patience=2)
    assert r.epochs_run == 4 and "early stopping" in r.stop_reason
    assert (r.best, r.best_epoch) == (0.6, 2)


def test_early_stopping_min_delta(tmp_path):
    values = [0.5, 0.54, 0.53, 0.9]
    assert _fit(tmp_path, values, patience=2).epochs_run == 4
    assert _fit(tmp_path, values, patience=2, min_delta=0.05).epochs_run == 3


def test_early_stopping_on_a_loss_minimises(tmp_path):
    r = _fit(tmp_path, [1.0, 0.9, 0.95, 0.97, 0.5], monitor="val_loss", patience=2)
    assert r.epochs_run == 4 and r.best == 0.9


def test_no_early_stopping_without_patience(tmp_path):
    assert _fit(tmp_path, [0.9, 0.1, 0.1, 0.1]).epochs_run == 4


def test_best_and_last_checkpoints(tmp_path):
    r = _fit(tmp_path, [0.5, 0.7, 0.6])
    best, last = load_checkpoint(r.run_dir / "best.pt"), load_checkpoint(r.run_dir / "last.pt")
    assert (best["epoch"], last["epoch"]) == (2, 3)
    assert len(last["history"]) == 3 and (r.run_dir / "metrics.csv").read_text().count("\n") == 4


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    # on the CPU the loss is checked every step (on CUDA every 20 steps, to avoid syncs)
    cfg = TrainConfig(epochs=5, lr=0.1, scheduler="none", progress=False, tensorboard=False, device="cpu")
    run_dir = new_run_dir(tmp_path)
    trainer = Trainer(ScriptedTask([0.5] * 5, nan_after_steps=8), cfg, run_dir)  # 4 steps/epoch: step 9 = epoch 3, step 1
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 3, step 1.*last\.pt \(epoch 2\).*--lr"):
        trainer.fit(_loader(), _loader(1))
    last = load_checkpoint(run_dir / "last.pt")
    assert last["epoch"] == 2
    assert all(torch.isfinite(t).all() for t in last["model"].values())
    assert (run_dir / "metrics.csv").read_text().count("\n") == 3


def test_nan_before_any_checkpoint(tmp_path):
    cfg = TrainConfig(epochs=2, lr=0.1, scheduler="none", progress=False, tensorboard=False, device="cpu")
    trainer = Trainer(ScriptedTask([0.5] * 2, nan_after_steps=0), cfg, new_run_dir(tmp_path))
    with pytest.raises(TrainingDiverged, match="no checkpoint had been written yet"):
        trainer.fit(_loader(), _loader(1))


def _tiny_cfg(idx_dir, **kw):
    from dcvkit.tasks.classify import ClassifyConfig

    base = dict(data="fashion-mnist", data_dir=str(idx_dir), model="cnn_tiny", batch_size=64, lr=0.05,
                progress=False, tensorboard=False, hflip=True, test=False, limit=300)
    base.update(kw)
    return ClassifyConfig(**base)


def test_resume_is_bitwise_identical(idx_dir, monkeypatch):
    from dcvkit.tasks.classify import ClassifyConfig, train

    plan = dict(epochs=3, scheduler="cosine")  # dropout + random flips: the RNG state must be restored too
    full = train(_tiny_cfg(idx_dir, name="full", **plan))

    real_epoch = Trainer._run_epoch

    def interrupted(self, train_loader, val_loader):
        if self.epoch == 2:
            raise KeyboardInterrupt  # Ctrl-C during epoch 3
        return real_epoch(self, train_loader, val_loader)

    monkeypatch.setattr(Trainer, "_run_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(_tiny_cfg(idx_dir, name="cut", **plan))
    monkeypatch.setattr(Trainer, "_run_epoch", real_epoch)
    cut_dir = full.run_dir.parent / "cut"
    assert load_checkpoint(cut_dir / "last.pt")["epoch"] == 2

    resumed = train(ClassifyConfig(resume=str(cut_dir)))
    assert resumed.run_dir == cut_dir
    a, b = load_checkpoint(full.run_dir / "last.pt"), load_checkpoint(cut_dir / "last.pt")
    assert b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    # and without the restored state the result differs (the test can fail)
    other = train(_tiny_cfg(idx_dir, name="other", seed=1, **plan))
    c = load_checkpoint(other.run_dir / "last.pt")
    assert not all(torch.equal(a["model"][k], c["model"][k]) for k in a["model"])


def test_tensorboard_and_csv_are_written(idx_dir):
    from dcvkit.tasks.classify import train

    r = train(_tiny_cfg(idx_dir, epochs=2, tensorboard=True, histogram_freq=1))
    events = list((r.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 1000  # scalars + histograms
    rows = (r.run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc,lr") and len(rows) == 3
    assert math.isfinite(float(rows[-1].split(",")[1]))


def test_ema_weights_are_validated_saved_and_resumed(idx_dir, monkeypatch):
    """--ema: best.pt / last.pt hold the averaged weights (what every later use loads), training's own weights
    travel beside them, and a resumed run ends exactly where an uninterrupted one does."""
    from dcvkit.tasks.classify import ClassifyConfig, train

    plan = dict(epochs=2, scheduler="cosine", ema=0.99)
    full = train(_tiny_cfg(idx_dir, name="full", **plan))
    ckpt = load_checkpoint(full.run_dir / "last.pt")
    assert ckpt["ema_steps"] == 2 * 5  # 270 training images / batch 64: 5 steps an epoch
    assert any(not torch.equal(ckpt["model"][k], ckpt["train_model"][k]) for k in ckpt["model"]
               if ckpt["model"][k].is_floating_point())
    real_epoch = Trainer._run_epoch

    def interrupted(self, train_loader, val_loader):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(self, train_loader, val_loader)

    monkeypatch.setattr(Trainer, "_run_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(_tiny_cfg(idx_dir, name="cut", **plan))
    monkeypatch.setattr(Trainer, "_run_epoch", real_epoch)
    resumed = load_checkpoint(train(ClassifyConfig(resume=str(full.run_dir.parent / "cut"))).run_dir / "last.pt")
    for k in ckpt["model"]:
        assert torch.equal(ckpt["model"][k], resumed["model"][k]), k


def test_ema_must_be_a_decay(tmp_path):
    from dcvkit.errors import ConfigError

    with pytest.raises(ConfigError, match="--ema must be in"):
        _fit(tmp_path, [0.5], ema=1.5)
