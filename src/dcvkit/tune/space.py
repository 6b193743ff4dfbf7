"""Search spaces: a YAML mapping from a task option to a distribution, checked against the task's config, and
what Optuna's samplers make of it (``suggest`` for a trial, ``grid`` for the grid sampler); ``--fixed``
options.

    lr: {type: float, low: 1.0e-3, high: 0.3, log: true}
    batch_size: {type: int, low: 32, high: 256, step: 32}
    model: {type: categorical, choices: [cnn, cnn_small]}
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from dcvkit.choices import SPACE_TYPES
from dcvkit.config import _coerce, check_value
from dcvkit.errors import ConfigError
from dcvkit.tasks import TaskSpec


def default_space(task: TaskSpec) -> dict[str, Any]:
    """The task's default search space (its entry in the task table), or an error asking for one."""
    if not task.tune_space:
        raise ConfigError(f"dcv tune --task {task.name}: give a search space with --space (docs/tuning.md)")
    return {k: dict(v) for k, v in task.tune_space.items()}


def parse_space(space: dict[str, Any], cfg_cls: type, where: str) -> dict[str, dict[str, Any]]:
    """Check a search space against the task's options; one-line errors naming the key."""
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    out: dict[str, dict[str, Any]] = {}
    if not space:
        raise ConfigError(f"{where}: the search space is empty")
    if not isinstance(space, dict):
        raise ConfigError(f"{where}: a search space is a mapping of option names to distributions, "
                          f"not a {type(space).__name__}")
    for name, spec in space.items():
        if name not in fields:
            raise ConfigError(f"{where}: '{name}' is not an option of this task (see dcv <task> train --help)")
        if not isinstance(spec, dict) or spec.get("type") not in SPACE_TYPES:
            raise ConfigError(f"{where}: '{name}' needs a mapping with type: {' | '.join(SPACE_TYPES)}")
        kind = spec["type"]
        if kind == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise ConfigError(f"{where}: '{name}' (categorical) needs a non-empty list of choices")
        else:
            if "low" not in spec or "high" not in spec:
                raise ConfigError(f"{where}: '{name}' ({kind}) needs low and high")
            try:
                low, high = float(spec["low"]), float(spec["high"])
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: '{name}': low and high must be numbers") from None
            if not low < high or (spec.get("log") and low <= 0):
                raise ConfigError(f"{where}: '{name}': need low < high (and low > 0 with log: true)")
        # every value the space can give must be one the option takes: its declaration, as for a flag
        hints = typing.get_type_hints(cfg_cls)
        for value in spec["choices"] if kind == "categorical" else (spec["low"], spec["high"]):
            check_value(cfg_cls, name, _coerce(name, value, hints[name], where), f"{where} (search space)")
        out[name] = dict(spec)
    return out


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            values[name] = trial.suggest_categorical(name, spec["choices"])
        elif spec["type"] == "int":
            values[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), step=int(spec.get("step", 1)),
                                             log=bool(spec.get("log", False)))
        else:
            values[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), step=spec.get("step"),
                                               log=bool(spec.get("log", False)))
    return values


def grid(space: dict[str, dict[str, Any]], points: int) -> dict[str, list[Any]]:
    """The grid sampler's values: categorical choices; int/float ranges at their step, else ``points`` values
    (geometric with log: true)."""
    import numpy as np

    out: dict[str, list[Any]] = {}
    for name, s in space.items():
        if s["type"] == "categorical":
            out[name] = list(s["choices"])
            continue
        lo, hi = float(s["low"]), float(s["high"])
        if s.get("step"):
            vals = list(np.arange(lo, hi + 1e-12, float(s["step"])))
        elif s.get("log"):
            vals = list(np.geomspace(lo, hi, points))
        else:
            vals = list(np.linspace(lo, hi, points))
        out[name] = [int(round(v)) for v in vals] if s["type"] == "int" else [float(v) for v in vals]
        if s["type"] == "int":
            out[name] = sorted(set(out[name]))
    return out


def parse_fixed(fixed: str | None) -> dict[str, Any]:
    """``"epochs=3, limit=10000"`` -> {"epochs": 3, "limit": 10000} (values read as YAML scalars)."""
    from dcvkit.config import safe_yaml

    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in (fixed or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"--fixed: '{part}' is not key=value")
        out[key.strip()] = safe_yaml(value.strip(), f"--fixed {key.strip()}")
    return out


__all__ = ["default_space", "parse_space", "suggest", "grid", "parse_fixed"]
