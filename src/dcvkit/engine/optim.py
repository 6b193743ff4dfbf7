"""Optimizers and learning-rate schedules from a :class:`~dcvkit.config.TrainConfig`.

Schedules are torch's own (``StepLR``, ``ExponentialLR``, ``CosineAnnealingLR``, ``OneCycleLR``,
``ReduceLROnPlateau``), stepped once per batch so that a fractional warm-up and short runs behave;
epoch-based parameters (``step_size``, per-epoch ``gamma``) are converted to steps. Warm-up is torch's
``LinearLR`` chained in front with ``SequentialLR`` (OneCycle has its own warm-up phase).
"""

from __future__ import annotations

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


def monitor_mode(monitor: str) -> str:
    """'min' for losses and errors, 'max' for everything else (accuracy, Dice, mAP)."""
    return "min" if any(k in monitor for k in ("loss", "err", "nll", "fid")) else "max"


class LRSchedule:
    """The learning rate over a run: :meth:`step_batch` after every optimizer step,
    :meth:`step_epoch` with the monitored metric after every validation."""

    def __init__(self, optimizer: Optimizer, cfg: TrainConfig, steps_per_epoch: int):
        self.name = cfg.scheduler
        spe = max(1, steps_per_epoch)
        total = max(1, cfg.epochs * spe)
        warm = min(int(round(cfg.warmup_epochs * spe)), total - 1)
        self.warmup_steps = warm
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

    def step_batch(self) -> None:
        self.steps += 1
        if self.per_step is not None and (self.plateau is None or self.steps <= self.warmup_steps):
            self.per_step.step()

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
        return self.name in ("onecycle", "cosine")

    def replay(self, steps: int, fresh: list[dict[str, Any]]) -> None:
        """Go to step ``steps`` of this schedule (built for a new length) from the optimizer hyperparameters
        it set at step 0 (``fresh``, one dict per param group; the loaded optimizer state holds the old
        schedule's): what ``--resume RUN --epochs N`` does for a length-dependent schedule."""
        import warnings

        for group, values in zip(self.optimizer.param_groups, fresh):
            group.update(values)
        with warnings.catch_warnings():  # stepping a schedule without optimizer steps is the point here
            warnings.simplefilter("ignore")
            for _ in range(steps):
                self.step_batch()

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps,
                "per_step": self.per_step.state_dict() if self.per_step is not None else None,
                "plateau": self.plateau.state_dict() if self.plateau is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        if self.per_step is not None and state.get("per_step") is not None:
            self.per_step.load_state_dict(state["per_step"])
        if self.plateau is not None and state.get("plateau") is not None:
            self.plateau.load_state_dict(state["plateau"])
