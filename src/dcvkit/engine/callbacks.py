"""Callbacks: what happens at the end of an epoch (early stopping, checkpoints, CSV, TensorBoard).

Each callback has ``on_fit_start(trainer)``, ``on_epoch_end(trainer, record)`` and ``on_fit_end(trainer)``,
plus ``state_dict``/``load_state_dict`` so a resumed run continues with the same counters.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from dcvkit.engine.optim import monitor_mode
from dcvkit.io import write_csv

if TYPE_CHECKING:
    from dcvkit.engine.loop import Trainer


class Callback:
    """Under distributed training a callback runs on rank 0 only, unless it sets ``all_ranks = True``."""

    all_ranks = False

    def on_fit_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_end(self, trainer: "Trainer", record: dict[str, float]) -> None: ...
    def on_fit_end(self, trainer: "Trainer") -> None: ...
    def state_dict(self) -> dict[str, Any]:
        return {}
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Improvement:
    """Tracks the best value of a monitored metric; ``update`` says whether it improved by > min_delta. A tie
    (an accuracy on a small split often repeats exactly) is broken by the validation loss: the epoch with the
    same accuracy and a lower loss is the better one (``tie_break=True``: best.pt; early stopping counts only
    real improvements)."""

    def __init__(self, monitor: str, min_delta: float = 0.0, tie_break: bool = False):
        self.monitor, self.min_delta, self.mode = monitor, abs(min_delta), monitor_mode(monitor)
        self.tie_break = tie_break and monitor != "val_loss"
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_loss: float | None = None

    def update(self, record: dict[str, float]) -> bool:
        value = record.get(self.monitor)
        if value is None or math.isnan(value):
            return False
        better = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta)
        loss = record.get("val_loss")
        if not better and self.tie_break and value == self.best and loss is not None and self.best_loss is not None:
            better = loss < self.best_loss
        if better:
            self.best, self.best_epoch, self.best_loss = float(value), int(record["epoch"]), loss
        return better


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs."""

    all_ranks = True  # distributed training: every rank decides to stop, from the same broadcast metrics

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0):
        self.patience = patience
        self.tracker = Improvement(monitor, min_delta)
        self.wait = 0

    def on_epoch_end(self, trainer: "Trainer", record: dict[str, float]) -> None:
        if self.tracker.monitor not in record:
            return
        if self.tracker.update(record):
            self.wait = 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop(f"early stopping: {self.tracker.monitor} did not improve for {self.patience} "
                             f"epochs (best {self.tracker.best:.4f} at epoch {self.tracker.best_epoch})")

    def state_dict(self) -> dict[str, Any]:
        return {"wait": self.wait, "best": self.tracker.best, "best_epoch": self.tracker.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait, self.tracker.best, self.tracker.best_epoch = state["wait"], state["best"], state["best_epoch"]


class Checkpointer(Callback):
    """``last.pt`` after every epoch, ``best.pt`` when ``monitor`` improves; both written atomically."""

    def __init__(self, run_dir: Path, monitor: str):
        self.run_dir = run_dir
        self.tracker = Improvement(monitor, tie_break=True)

    def on_epoch_end(self, trainer: "Trainer", record: dict[str, float]) -> None:
        trainer.check_weights(step=0)  # never save non-finite weights over the last good checkpoint
        improved = self.tracker.update(record) or self.tracker.monitor not in record
        targets = [self.run_dir / "last.pt"] + ([self.run_dir / "best.pt"] if improved else [])
        trainer.commit(targets)  # serialised once, linked into both names; then config.yaml

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best, "best_epoch": self.tracker.best_epoch, "best_loss": self.tracker.best_loss}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best, self.tracker.best_epoch = state["best"], state["best_epoch"]
        self.tracker.best_loss = state.get("best_loss")


class CSVLogger(Callback):
    """``metrics.csv``: one row per epoch, rewritten atomically."""

    def __init__(self, path: Path):
        self.path = path

    def on_epoch_end(self, trainer: "Trainer", record: dict[str, float]) -> None:
        write_csv(self.path, trainer.history)


class TensorBoard(Callback):
    """Scalars and the learning rate every epoch; weight histograms every ``histogram_freq`` epochs."""

    def __init__(self, log_dir: Path, histogram_freq: int = 1):
        self.log_dir, self.histogram_freq = log_dir, histogram_freq
        self.writer = None

    def on_fit_start(self, trainer: "Trainer") -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir))

    def on_epoch_end(self, trainer: "Trainer", record: dict[str, float]) -> None:
        assert self.writer is not None
        epoch = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch":
                group = key.split("_", 1)
                tag = f"{group[1]}/{group[0]}" if len(group) == 2 and group[0] in ("train", "val") else key
                self.writer.add_scalar(tag, value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for name, p in trainer.task.model.named_parameters():
                self.writer.add_histogram(name, p.detach().float().cpu(), epoch)
        self.writer.flush()

    def on_fit_end(self, trainer: "Trainer") -> None:
        if self.writer is not None:
            self.writer.close()


_EXTRA: contextvars.ContextVar[tuple[Callback, ...]] = contextvars.ContextVar("dcvkit_extra_callbacks", default=())


@contextlib.contextmanager
def extra_callbacks(*callbacks: Callback) -> Iterator[None]:
    """Every :class:`~dcvkit.engine.Trainer` created inside the ``with`` block (in this thread or task) also
    runs ``callbacks`` (before the checkpointer). How a job that calls a task's ``train`` from outside watches
    its epochs: ``dcv tune`` reports each epoch's metric to Optuna and prunes through it."""
    token = _EXTRA.set(_EXTRA.get() + tuple(callbacks))
    try:
        yield
    finally:
        _EXTRA.reset(token)


def active_extra_callbacks() -> list[Callback]:
    return list(_EXTRA.get())
