"""Hyperparameter optimisation on Optuna over any task's ``train`` (``dcv tune``; docs/tuning.md).

:mod:`~dcvkit.tune.config` (the options), :mod:`~dcvkit.tune.space` (search spaces), :mod:`~dcvkit.tune.study`
(samplers, pruners, shared storage and its lock, the ask-and-tell loop), :mod:`~dcvkit.tune.tuner` (a study
run: the objective, per-epoch pruning, ranked trials, best.yaml, plots).
"""

from __future__ import annotations

from typing import Any

from dcvkit.tune.config import TuneConfig


def __getattr__(name: str) -> Any:  # tune() imports the engine (torch): only when asked for
    if name in ("tune", "TuneResult"):
        from dcvkit.tune import tuner

        return getattr(tuner, name)
    raise AttributeError(name)


__all__ = ["TuneConfig", "tune", "TuneResult"]
