"""``dcv tune``: hyperparameter optimisation on Optuna, with any task's ``train`` as the objective.

A search space is a YAML mapping from a training option to a distribution::

    lr: {type: float, low: 1.0e-3, high: 0.3, log: true}
    dropout: {type: float, low: 0.0, high: 0.5}
    batch_size: {type: int, low: 32, high: 256, step: 32}
    model: {type: categorical, choices: [cnn, cnn_small]}
    augment: {type: categorical, choices: [null, "rotation_range=10, horizontal_flip=true"]}

Each trial builds the task's config (the ``--base`` YAML and ``--fixed`` options, then the trial's values;
every name and value checked as ``--config`` would be), trains it into ``<run>/trials/trial_<n>`` and returns
the best value of the monitored validation metric. Each epoch's value is reported to Optuna through an engine
callback, so the pruner (``median``, ``hyperband``) stops bad trials early; a pruned trial is recorded as
pruned. The study lives in a journal file in the run directory (Optuna's ``JournalFileBackend``: safe for
several processes on one machine) or, with ``--storage postgresql://...``, in a database that workers on
many machines share; ``--resume RUN`` continues a study. Outputs: ``trials.csv`` (ranked), ``best.yaml``
(the task config that ``dcv <task> train --config best.yaml`` runs as is) and plots (optimisation history,
parameter importances, parallel coordinates).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dcvkit.config import from_dict, load_yaml, to_dict
from dcvkit.engine.callbacks import Callback, extra_callbacks
from dcvkit.engine.optim import monitor_mode
from dcvkit.errors import ConfigError
from dcvkit.io import new_run_dir, write_csv, write_json, write_yaml
from dcvkit.tasks import get_task
from dcvkit.tune.config import TuneConfig
from dcvkit.tune.space import default_space, parse_fixed, parse_space, suggest
from dcvkit.tune.study import make_pruner, make_sampler, open_study, run_trials


class OptunaPruning(Callback):
    """Reports the monitored metric to the trial after every epoch; raises ``optuna.TrialPruned`` (which ends
    the trial's training) when the pruner says so."""

    def __init__(self, trial: Any, monitor: str):
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, trainer: Any, record: dict[str, float]) -> None:
        import optuna

        value = record.get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        epoch = int(record["epoch"])
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.monitor} {value:.4f} at epoch {epoch}")


@dataclass
class TuneResult:
    run_dir: Path
    study: Any
    best_config: Path | None
    rows: list[dict[str, Any]]


def tune(cfg: TuneConfig, objective_hook: Callable[[Any, Any], None] | None = None,
         log: Callable[[str], None] = print, pruner: Any = None) -> TuneResult:
    """Run (or continue) a study; writes trials.csv, best.yaml, study.json and the plots into the run
    directory. ``pruner``: an Optuna pruner object instead of ``cfg.pruner`` (the Python API's option)."""
    import optuna

    run_dir: Path | None = None
    if cfg.resume:
        run_dir = Path(cfg.resume)
        saved = load_yaml(run_dir / "tune.yaml")
        defaults = to_dict(TuneConfig())
        changed = {k: v for k, v in to_dict(cfg).items()  # what this worker changes: how long it works
                   if k in ("trials", "timeout", "n_jobs", "progress") and v != defaults[k]}
        cfg = from_dict(TuneConfig, {**saved, **changed, "resume": None}, where=str(run_dir / "tune.yaml"))
    task = get_task(cfg.task)
    cfg_cls = task.config
    base = load_yaml(cfg.base) if cfg.base else {}
    base = {k: v for k, v in base.items() if k not in ("resume", "project", "name")}
    base.update(parse_fixed(cfg.fixed))
    base_cfg = from_dict(cfg_cls, base, where=cfg.base or "--fixed")
    space_src = load_yaml(cfg.space) if cfg.space else default_space(task)
    space = parse_space(space_src, cfg_cls, cfg.space or "default space")
    monitor = cfg.monitor or base_cfg.monitor
    if monitor == "auto":
        raise ConfigError(f"--task {cfg.task}: its monitor depends on the model; give --monitor (e.g. val_loss)")
    direction = "minimize" if monitor_mode(monitor) == "min" else "maximize"
    if run_dir is None:  # everything the study needs is checked: now its run directory
        run_dir = new_run_dir(Path(cfg.project) / "tune", cfg.name)
        cfg = dataclasses.replace(cfg, storage=cfg.storage or str(run_dir / "study.journal"),
                                  study=cfg.study or run_dir.name)
        write_yaml(run_dir / "tune.yaml", to_dict(cfg))
    assert cfg.storage is not None and cfg.study is not None  # set when the run directory was made
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, lock = open_study(cfg.storage, cfg.study, sampler=make_sampler(cfg, space),
                             pruner=pruner or make_pruner(cfg.pruner), direction=direction)
    trials_dir = run_dir / "trials"

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, space)
        # trials never look at the test split (selection is on validation only; best.yaml keeps the base's --test)
        no_test = {"test": False} if "test" in {f.name for f in dataclasses.fields(cfg_cls)} else {}
        trial_cfg = from_dict(cfg_cls, {**base, **values, "seed": base.get("seed", cfg.seed), "progress": cfg.progress,
                                        "tensorboard": False, **no_test}, where=f"trial {trial.number}")
        if objective_hook is not None:
            objective_hook(trial, trial_cfg)
        t0 = time.perf_counter()
        with extra_callbacks(OptunaPruning(trial, monitor)):
            result = task.train(trial_cfg, run_dir=trials_dir / f"trial_{trial.number}")
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
        trial.set_user_attr("run_dir", str(result.run_dir))
        if result.fit.best is None:
            raise ConfigError(f"trial {trial.number}: the run reported no '{monitor}' (check --monitor)")
        log(f"trial {trial.number}: {monitor} {result.fit.best:.4f}  {values}")
        return float(result.fit.best)

    run_trials(study, objective, cfg, lock)
    rows = trial_rows(study, monitor)
    write_csv(run_dir / "trials.csv", rows)
    best_path = None
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if completed:
        best = study.best_trial
        best_cfg = from_dict(cfg_cls, {**base, **best.params, "seed": base.get("seed", cfg.seed)}, where="best trial")
        best_path = write_yaml(run_dir / "best.yaml", {**to_dict(best_cfg), "project": "runs", "name": "exp",
                                                      "resume": None})
        write_json(run_dir / "study.json", {"study": cfg.study, "task": cfg.task, "monitor": monitor,
                                            "direction": direction, "best_value": best.value,
                                            "best_params": best.params, "best_trial": best.number,
                                            "trials": len(study.trials), "complete": len(completed),
                                            "pruned": sum(t.state == optuna.trial.TrialState.PRUNED
                                                          for t in study.trials)})
        plot_study(study, run_dir)
    return TuneResult(run_dir, study, best_path, rows)


def trial_rows(study: Any, monitor: str) -> list[dict[str, Any]]:
    """Trials ranked best first (completed by value, then pruned, then the rest)."""
    import optuna

    sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
    state_rank = {optuna.trial.TrialState.COMPLETE: 0, optuna.trial.TrialState.PRUNED: 1}

    def key(t: Any) -> tuple[int, float]:
        return state_rank.get(t.state, 2), sign * t.value if t.value is not None else math.inf

    rows = []
    for rank, t in enumerate(sorted(study.trials, key=key), 1):
        last = max(t.intermediate_values) if t.intermediate_values else None
        rows.append({"rank": rank, "trial": t.number, "state": t.state.name.lower(),
                     monitor: round(t.value, 5) if t.value is not None else "",
                     "epochs": last if last is not None else "", "seconds": t.user_attrs.get("seconds", ""),
                     **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in t.params.items()}})
    return rows


def plot_study(study: Any, run_dir: Path) -> None:
    """history.png, importances.png and parallel.png through optuna.visualization.matplotlib."""
    import warnings

    import optuna.visualization.matplotlib as ovm

    from dcvkit.viz.plots import plt, save_figure

    plots = {"history.png": ovm.plot_optimization_history, "parallel.png": ovm.plot_parallel_coordinate,
             "importances.png": ovm.plot_param_importances}
    for name, fn in plots.items():
        # Optuna marks its matplotlib plots experimental (a warning) and switches the global style to ggplot:
        # both kept inside this block
        with warnings.catch_warnings(), plt.rc_context():
            warnings.simplefilter("ignore")
            try:
                ax = fn(study)
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue  # e.g. importances need >= 2 completed trials with varied parameters
            fig = (ax[0] if hasattr(ax, "__len__") else ax).figure
            fig.set_size_inches(8, 4.5)
            save_figure(fig, run_dir / name)
    plt.close("all")


__all__ = ["TuneResult", "tune", "OptunaPruning", "trial_rows", "plot_study"]
