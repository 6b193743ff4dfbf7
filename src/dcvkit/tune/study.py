"""Optuna studies shared by workers: samplers, pruners, storage (a journal file on one machine, PostgreSQL for
many), the lock under which a worker counts the trials and asks for one, and the ask-and-tell loop."""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

from dcvkit.errors import ConfigError, TrainingDiverged
from dcvkit.tune.config import TuneConfig
from dcvkit.tune.space import grid


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


__all__ = ["make_sampler", "make_pruner", "make_storage", "open_study", "study_lock", "run_trials"]
