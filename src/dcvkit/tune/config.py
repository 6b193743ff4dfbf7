"""``dcv tune``'s options (torch-free, so ``dcv tune --help`` answers at once)."""

from __future__ import annotations

from dataclasses import dataclass

from dcvkit.choices import PRUNERS, SAMPLERS
from dcvkit.config import RunConfig, opt
from dcvkit.tasks import TASKS


@dataclass
class TuneConfig(RunConfig):
    """Tuning: which task, which space, how many trials, where the study lives."""

    task: str = opt("classify", "the task whose train is the objective", tuple(TASKS))
    space: str | None = opt(None, "search space YAML (docs/tuning.md); default: the task's own (classify: lr, "
                                  "dropout, weight_decay, batch_size)")
    base: str | None = opt(None, "the task's config YAML that every trial starts from (e.g. a run's config.yaml)")
    fixed: str | None = opt(None, "task options fixed for every trial, inline: 'epochs=3, limit=10000'")
    trials: int = opt(20, "trials to run (in all, across every worker on the study)")
    timeout: float | None = opt(None, "stop starting new trials after this many seconds")
    n_jobs: int = opt(1, "trials run in parallel threads by this process (more processes: start dcv tune again "
                         "with --resume RUN)")
    sampler: str = opt("tpe", "how trial values are chosen", SAMPLERS)
    pruner: str = opt("median", "stop bad trials early from their per-epoch validation metric", PRUNERS)
    grid_points: int = opt(3, "grid sampler: points per float/int range without a step")
    storage: str | None = opt(None, "study storage: a journal file path (default <run>/study.journal) or an RDB URL "
                                    "such as postgresql://user@host/db for workers on several machines")
    study: str | None = opt(None, "study name (default: the run directory's name)")
    monitor: str | None = opt(None, "validation metric to optimise (default: the task's --monitor)")
    resume: str | None = opt(None, "continue a tune run: its directory (same study, same space)")
    progress: bool = opt(False, "show each trial's progress bars")


__all__ = ["TuneConfig"]
