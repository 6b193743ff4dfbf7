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

import contextlib
import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

from dcvkit.config import RunConfig, from_dict, load_yaml, opt, to_dict
from dcvkit.engine.callbacks import Callback, extra_callbacks
from dcvkit.engine.optim import monitor_mode
from dcvkit.errors import ConfigError, TrainingDiverged
from dcvkit.io import new_run_dir, write_csv, write_json, write_yaml

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "hyperband", "none")
TYPES = ("float", "int", "categorical")


@dataclass
class TuneConfig(RunConfig):
    """Tuning: which task, which space, how many trials, where the study lives."""

    task: str = opt("classify", "the task whose train is the objective", ("classify", "segment", "detect", "generate"))
    space: str | None = opt(None, "search space YAML (docs/tuning.md); default for classify: lr, dropout, "
                                  "weight_decay, batch_size")
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


def default_space(task: str) -> dict[str, Any]:
    if task != "classify":
        raise ConfigError(f"dcv tune --task {task}: give a search space with --space (docs/tuning.md)")
    return {"lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5},
            "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
            "batch_size": {"type": "categorical", "choices": [64, 128, 256]}}


def task_entry(task: str) -> tuple[type, Callable[..., Any]]:
    """(config class, train function) of a task."""
    if task == "classify":
        from dcvkit.tasks.classify import ClassifyConfig, train
        return ClassifyConfig, train
    if task == "segment":
        from dcvkit.tasks.segment import SegmentConfig, train
        return SegmentConfig, train
    if task == "detect":
        from dcvkit.tasks.detect import DetectConfig, train
        return DetectConfig, train
    if task == "generate":
        from dcvkit.tasks.generate import GenerateConfig, train
        return GenerateConfig, train
    raise ConfigError(f"unknown task '{task}'")


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
        if not isinstance(spec, dict) or spec.get("type") not in TYPES:
            raise ConfigError(f"{where}: '{name}' needs a mapping with type: {' | '.join(TYPES)}")
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
    import yaml

    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in (fixed or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"--fixed: '{part}' is not key=value")
        out[key.strip()] = yaml.safe_load(value.strip())
    return out


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


def make_sampler(cfg: TuneConfig, space: dict[str, dict[str, Any]]) -> Any:
    import optuna

    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=cfg.seed)
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=cfg.seed)
    if cfg.sampler == "grid":
        class Grid(optuna.samplers.GridSampler):
            """Optuna's grid sampler without its ``study.stop()`` once the grid is covered: ``stop`` only works
            inside ``study.optimize``; dcvkit's ask-and-tell loop stops by counting trials (past the grid's size
            the sampler revisits points)."""

            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                return None

        return Grid(grid(space, cfg.grid_points), seed=cfg.seed)
    if cfg.sampler == "cmaes":
        bad = [n for n, s in space.items() if s["type"] == "categorical"]
        if bad:
            raise ConfigError(f"--sampler cmaes handles numbers only; {', '.join(bad)} are categorical (use tpe)")
        return optuna.samplers.CmaEsSampler(seed=cfg.seed)
    raise ConfigError(f"unknown sampler '{cfg.sampler}'")


def make_pruner(name: str) -> Any:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def make_storage(spec: str) -> Any:
    """A journal file path or an RDB URL."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if "://" in spec:
        return optuna.storages.RDBStorage(spec)
    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(spec))


def open_study(spec: str, name: str, **study_kwargs: Any) -> tuple[Any, Callable[[], ContextManager[None]]]:
    """Create or load the study ``name`` in storage ``spec``; returns it and the lock its workers hold while
    asking for a trial (:func:`study_lock`). Workers that start together create the tables and the study
    once, under the same kind of lock."""
    import optuna

    engine = None
    try:
        if spec.startswith("postgresql"):
            import sqlalchemy

            engine = sqlalchemy.create_engine(spec, poolclass=sqlalchemy.pool.NullPool)
        with study_lock(spec, f"{name}/setup", engine)():
            storage = make_storage(spec)
            study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True, **study_kwargs)
    except (ConfigError, KeyboardInterrupt):
        raise
    except Exception as e:  # driver missing, server down, bad URL: one line
        if "://" not in spec:
            raise
        raise ConfigError(f"--storage {spec}: cannot open the study database ({str(e).splitlines()[0][:200]}); "
                          "PostgreSQL needs pip install 'dcvkit[postgres]'") from None
    finally:
        if engine is not None:
            engine.dispose()
    return study, study_lock(spec, name, getattr(storage, "engine", None))


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

    if cfg.resume:
        run_dir = Path(cfg.resume)
        saved = load_yaml(run_dir / "tune.yaml")
        defaults = to_dict(TuneConfig())
        changed = {k: v for k, v in to_dict(cfg).items()  # what this worker changes: how long it works
                   if k in ("trials", "timeout", "n_jobs", "progress") and v != defaults[k]}
        cfg = from_dict(TuneConfig, {**saved, **changed, "resume": None}, where=str(run_dir / "tune.yaml"))
    else:
        run_dir = new_run_dir(Path(cfg.project) / "tune", cfg.name)
        cfg = dataclasses.replace(cfg, storage=cfg.storage or str(run_dir / "study.journal"),
                                  study=cfg.study or run_dir.name)
        write_yaml(run_dir / "tune.yaml", to_dict(cfg))
    cfg_cls, train = task_entry(cfg.task)
    base = load_yaml(cfg.base) if cfg.base else {}
    base = {k: v for k, v in base.items() if k not in ("resume", "project", "name")}
    base.update(parse_fixed(cfg.fixed))
    base_cfg = from_dict(cfg_cls, base, where=cfg.base or "--fixed")
    space_src = load_yaml(cfg.space) if cfg.space else default_space(cfg.task)
    space = parse_space(space_src, cfg_cls, cfg.space or "default space")
    monitor = cfg.monitor or base_cfg.monitor
    if monitor == "auto":
        raise ConfigError(f"--task {cfg.task}: its monitor depends on the model; give --monitor (e.g. val_loss)")
    direction = "minimize" if monitor_mode(monitor) == "min" else "maximize"
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
            result = train(trial_cfg, run_dir=trials_dir / f"trial_{trial.number}")
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


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


@contextlib.contextmanager
def _postgres_lock(engine: Any, name: str) -> Iterator[None]:
    """A session-level advisory lock on the study's server: held by one worker at a time, on any machine."""
    from sqlalchemy import text

    key = int.from_bytes(hashlib.sha1(f"dcvkit-tune:{name}".encode()).digest()[:8], "big", signed=True)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def study_lock(spec: str, name: str, engine: Any = None) -> Callable[[], ContextManager[None]]:
    """The lock every worker of a study holds while it counts the trials and asks for one: an ``fcntl`` lock
    on ``<journal>.ask-lock`` (one machine; Optuna keeps its own ``<journal>.lock``) or ``<db>.ask-lock`` for
    SQLite, a PostgreSQL advisory lock named after the study (``engine``: a connection to its server) for
    workers on many machines. Other databases get none: their workers may overshoot ``--trials`` by one trial
    per extra worker."""
    if spec.startswith("postgresql"):
        return lambda: _postgres_lock(engine, name)
    if "://" not in spec or spec.startswith("sqlite:///"):
        path = Path(spec.removeprefix("sqlite:///") + ".ask-lock")
        return lambda: _file_lock(path)
    return contextlib.nullcontext


def run_trials(study: Any, objective: Callable[[Any], float], cfg: TuneConfig,
               lock: Callable[[], ContextManager[None]] = contextlib.nullcontext) -> None:
    """Optuna's ask-and-tell loop in ``cfg.n_jobs`` threads, until the study holds ``cfg.trials`` trials that
    are complete, pruned or running (failed ones are replaced) or ``cfg.timeout`` passes.

    Counting and asking happen under one lock (a thread lock plus the study's :func:`study_lock`), so workers
    sharing the study start exactly the trials asked for: ``study.optimize`` with ``MaxTrialsCallback`` checks
    only after a trial ends and can overshoot by one trial per extra worker. Threads share torch's random
    generator, so trials run with ``n_jobs > 1`` are not reproducible bit for bit; separate processes are."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import optuna

    TS = optuna.trial.TrialState
    t0 = time.monotonic()
    tlock = threading.Lock()

    def ask() -> Any:
        with tlock, lock():
            taken = len(study.get_trials(deepcopy=False, states=(TS.COMPLETE, TS.PRUNED, TS.RUNNING)))
            if taken >= cfg.trials or (cfg.timeout is not None and time.monotonic() - t0 > cfg.timeout):
                return None
            return study.ask()

    def worker() -> None:
        while (trial := ask()) is not None:
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                study.tell(trial, state=TS.PRUNED)
            except TrainingDiverged as e:  # a diverged trial fails; the study goes on
                trial.set_user_attr("error", str(e)[:300])
                study.tell(trial, state=TS.FAIL)
            except BaseException:
                study.tell(trial, state=TS.FAIL)
                raise
            else:
                study.tell(trial, value)

    if cfg.n_jobs <= 1:
        worker()
        return
    with ThreadPoolExecutor(cfg.n_jobs) as pool:
        for f in [pool.submit(worker) for _ in range(cfg.n_jobs)]:
            f.result()


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


__all__ = ["TuneConfig", "TuneResult", "tune", "parse_space", "grid", "default_space", "OptunaPruning"]
