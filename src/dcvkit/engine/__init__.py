"""The training engine shared by every task: :class:`Trainer` runs a :class:`Task`."""

from dcvkit.engine.loop import FitResult, Task, Trainer
from dcvkit.engine.optim import LRSchedule, build_optimizer, param_groups
from dcvkit.engine.runtime import epoch_seed, resolve_device, seed_everything

__all__ = ["Trainer", "Task", "FitResult", "LRSchedule", "build_optimizer", "param_groups",
           "resolve_device", "seed_everything", "epoch_seed"]
