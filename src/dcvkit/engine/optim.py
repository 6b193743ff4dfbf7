"""Optimizers and learning-rate schedules from a :class:`~dcvkit.config.TrainConfig`.

Schedules are torch's own (``StepLR``, ``ExponentialLR``, ``CosineAnnealingLR``, ``OneCycleLR``,
``ReduceLROnPlateau``), stepped once per batch so that a fractional warm-up and short runs behave;
epoch-based parameters (``step_size``, per-epoch ``gamma``) are converted to steps. Warm-up is torch's
``LinearLR`` chained in front with ``SequentialLR`` (OneCycle has its own warm-up phase).

**Fitted to the time** (``--max-time`` with one-cycle or cosine, as Ultralytics' ``time=``): the same torch
schedule, built over "ticks" (the warm-up's steps, then at most :data:`FIT_TICKS` for the rest), is moved to
wherever the run is furthest along, in steps (of ``--epochs``) or in time (of ``--max-time``): it reaches its
final value exactly when the time is up, or at the last step if that comes first. The time measured replaces
a throughput estimate, so a machine that slows down mid-run still ends on the schedule's last value.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Iterable

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim import lr_scheduler as sched

from dcvkit.config import TrainConfig
from dcvkit.errors import ConfigError


def param_groups(params: nn.Module | Iterable[nn.Parameter], weight_decay: float, lr: float | None = None
                 ) -> list[dict[str, Any]]:
    """Weight decay on weights (ndim > 1) only: decaying biases and norm scales only hurts.

    Frozen parameters (``requires_grad=False``) are included: they get no gradient, so the optimizer skips
    them until they are unfrozen (``--unfreeze-at``)."""
    decay, no_decay = [], []
    for p in (params.parameters() if isinstance(params, nn.Module) else params):
        (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if lr is not None:
        for g in groups:
            g["lr"] = lr
    return [g for g in groups if g["params"]]


def build_optimizer(params: Iterable[Any], cfg: TrainConfig) -> Optimizer:
    """``cfg.optimizer`` over ``params`` (tensors or param-group dicts)."""
    params = list(params)
    if cfg.lr <= 0:
        raise ConfigError(f"lr must be > 0, got {cfg.lr}")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ConfigError(f"unknown optimizer '{cfg.optimizer}'; choose sgd, adam, adamw or rmsprop")


LENGTH_DEPENDENT = ("onecycle", "cosine")  # schedules that anneal over the run's length


def monitor_mode(monitor: str) -> str:
    """'min' for losses and errors, 'max' for everything else (accuracy, Dice, mAP)."""
    return "min" if any(k in monitor for k in ("loss", "err", "nll", "fid")) else "max"


FIT_TICKS = 10_000  # a time-fitted schedule's resolution after its warm-up


class LRSchedule:
    """The learning rate over a run: :meth:`step_batch` after every optimizer step,
    :meth:`step_epoch` with the monitored metric after every validation. ``fitted``: the schedule is fitted to
    the time as well (see the module; only one-cycle and cosine anneal over a length), and ``step_batch``
    takes the fraction of ``--max-time`` used."""

    def __init__(self, optimizer: Optimizer, cfg: TrainConfig, steps_per_epoch: int, fitted: bool = False):
        self.name = cfg.scheduler
        spe = max(1, steps_per_epoch)
        total = max(1, cfg.epochs * spe)
        warm = min(int(round(cfg.warmup_epochs * spe)), total - 1)
        self.fitted = fitted and self.name in LENGTH_DEPENDENT
        self.total_steps, self.warmup_steps = total, warm
        if self.fitted:  # ticks: the warm-up's steps one by one, then the rest at a fixed resolution
            total = warm + min(total - warm, FIT_TICKS)
        self.ticks_total, self.ticks = total, 0
        self._time = 0.0  # fitted: the largest fraction of the time told so far (this invocation)
        self._from: tuple[int, float, int] | None = None  # fitted: (tick, time fraction, step) past the warm-up
        self.steps = 0
        self.plateau: sched.ReduceLROnPlateau | None = None
        per_step: sched.LRScheduler | None = None
        if self.name == "onecycle":
            pct = warm / total if warm else 0.3
            # total + 1: the schedule is also evaluated once after the last batch (that value is logged),
            # and OneCycleLR extrapolates past its last step instead of staying at the minimum.
            per_step = sched.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                        total_steps=total + 1, pct_start=max(pct, 1.0 / total))
            warm = 0
        else:
            main: sched.LRScheduler | None = None
            if self.name == "step":
                main = sched.StepLR(optimizer, step_size=max(1, cfg.step_size * spe), gamma=cfg.gamma)
            elif self.name == "exponential":
                main = sched.ExponentialLR(optimizer, gamma=cfg.gamma ** (1.0 / spe))
            elif self.name == "cosine":
                main = sched.CosineAnnealingLR(optimizer, T_max=max(1, total - warm))
            elif self.name == "plateau":
                self.plateau = sched.ReduceLROnPlateau(optimizer, mode=monitor_mode(cfg.monitor),
                                                       factor=cfg.gamma, patience=cfg.plateau_patience)
            elif self.name != "none":
                raise ConfigError(f"unknown scheduler '{self.name}'")
            if warm:
                warmup = sched.LinearLR(optimizer, start_factor=0.1, end_factor=1.0, total_iters=warm)
                per_step = warmup if main is None else sched.SequentialLR(optimizer, [warmup, main], [warm])
            else:
                per_step = main
        self.per_step = per_step
        self.optimizer = optimizer

    def step_batch(self, time_fraction: float | None = None) -> None:
        """After an optimizer step; ``time_fraction``: a fitted schedule's share of ``--max-time`` used so
        far (None: not told at this step; the last value holds)."""
        self.steps += 1
        if not self.fitted:
            if self.per_step is not None and (self.plateau is None or self.steps <= self.warmup_steps):
                self.per_step.step()
                self.ticks += 1
            return
        if self._from is None and self.ticks >= self.warmup_steps:  # where the time starts to count
            self._from = (self.ticks, self._time, self.steps - 1)
        if time_fraction is not None:
            self._time = max(self._time, time_fraction)
        self._advance(self._target())

    def _target(self) -> int:
        """The tick a fitted schedule should be at: past the warm-up (which goes step by step, unless the time
        runs out during it), the further of the steps' and the time's shares of what was left when this
        invocation left the warm-up (or started)."""
        if self._time >= 1:
            return self.ticks_total
        if self._from is None:  # the warm-up goes step by step
            return min(self.steps, self.ticks_total)
        tick0, t0, s0 = self._from
        by_steps = (self.steps - s0) / max(1, self.total_steps - s0)
        by_time = (self._time - t0) / max(1e-9, 1 - t0)
        return min(self.ticks_total, tick0 + math.floor((self.ticks_total - tick0) * max(by_steps, by_time)))

    def _advance(self, target: int) -> None:
        assert self.per_step is not None
        with warnings.catch_warnings():  # several schedule steps per optimizer step are the point here
            warnings.simplefilter("ignore")
            while self.ticks < target:
                self.per_step.step()
                self.ticks += 1

    @property
    def finished(self) -> bool:
        """A fitted schedule at its last value (the time is up, or the last step is done)."""
        return self.fitted and self.ticks >= self.ticks_total

    @property
    def progress(self) -> float:
        """How far along the schedule is, 0 to 1."""
        return self.ticks / max(1, self.ticks_total)

    def step_epoch(self, metrics: dict[str, float], monitor: str) -> None:
        if self.plateau is not None and self.steps >= self.warmup_steps and monitor in metrics:
            self.plateau.step(metrics[monitor])

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def length_dependent(self) -> bool:
        """Whether the lr at a step depends on the run's length (one-cycle and cosine anneal over it; step,
        exponential, plateau and none do not, so a run extended with more epochs follows them exactly)."""
        return self.name in LENGTH_DEPENDENT

    def replay(self, steps: int, fresh: list[dict[str, Any]], progress: float | None = None) -> None:
        """Go to step ``steps`` of this schedule (built for a new length) from the optimizer hyperparameters
        it set at step 0 (``fresh``, one dict per param group; the loaded optimizer state holds the old
        schedule's): what ``--resume RUN --epochs N`` does for a length-dependent schedule. A fitted
        schedule goes to the same ``progress`` (its share done) instead."""
        for group, values in zip(self.optimizer.param_groups, fresh):
            group.update(values)
        if self.fitted:
            self.steps = steps
            self._advance(min(self.ticks_total, round((progress or 0.0) * self.ticks_total)))
            return
        with warnings.catch_warnings():  # stepping a schedule without optimizer steps is the point here
            warnings.simplefilter("ignore")
            for _ in range(steps):
                self.step_batch()

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "ticks": self.ticks, "fitted": self.fitted, "progress": self.progress,
                "per_step": self.per_step.state_dict() if self.per_step is not None else None,
                "plateau": self.plateau.state_dict() if self.plateau is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        self.ticks = int(state.get("ticks", self.steps))
        if self.per_step is not None and state.get("per_step") is not None:
            self.per_step.load_state_dict(state["per_step"])
        if self.plateau is not None and state.get("plateau") is not None:
            self.plateau.load_state_dict(state["plateau"])
