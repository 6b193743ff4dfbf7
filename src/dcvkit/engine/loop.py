"""The one training loop every task uses.

A task gives the engine (see :class:`Task`): ``model``, ``configure_optimizers(cfg)``,
``training_step(batch) -> (loss, logs)``, ``validation_step(batch)``, ``validation_epoch_end() -> metrics``
and ``checkpoint_meta()``; optionally ``on_train_epoch_start(epoch)`` (called after ``model.train()``),
``generators()`` (its own random generators, checkpointed) and ``validation_notes()`` (what makes the last
validation's numbers meaningless, in words: the model predicts one class everywhere, no boxes...; the
engine warns each epoch, and :class:`FitResult` keeps them). The engine owns the rest: device placement
(channels-last for conv nets, a 2x speed-up on CPU), mixed precision on CUDA, the learning-rate schedule, the
progress bar, callbacks (early stopping, checkpoints, CSV, TensorBoard), resume (from the end of an epoch or
from the middle of one, exactly), the guards (NaN/Inf loss, out of GPU memory, ``--max-time``,
SIGINT/SIGTERM). Under torchrun it trains DistributedDataParallel (see :mod:`dcvkit.engine.distributed`):
rank 0 validates, logs and checkpoints.

Resuming is exact: a checkpoint holds the model, optimizer, schedule, scaler, callbacks (early stopping),
history, every random state a step draws from (torch's, and the task's own generators from its optional
``generators()``) and, mid-epoch, the position in the epoch's data order and the epoch's running sums. The
data order is a function of (seed, epoch), so skipping the steps already done puts the run back where it was:
a run resumed from any checkpoint ends with the same weights, bit for bit, as one never stopped (CPU,
deterministic algorithms).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol

import torch
import yaml
from rich.console import Console
from torch import Tensor, nn

from dcvkit.config import TrainConfig, to_dict
from dcvkit.data.core import Batches
from dcvkit.engine import distributed
from dcvkit.engine.callbacks import (Callback, Checkpointer, CSVLogger, EarlyStopping, TensorBoard,
                                    active_extra_callbacks)
from dcvkit.engine.optim import LRSchedule
from dcvkit.engine.runtime import epoch_seed, rng_state, set_rng_state
from dcvkit.errors import CheckpointError, ConfigError, Interrupted, ResourceError, TrainingDiverged
from dcvkit.io import atomic_write, save_checkpoint
from dcvkit.progress import Bar

console = Console(stderr=True)


def check_resumable(ckpt: dict[str, Any], saved: TrainConfig, cfg: TrainConfig, where: str) -> None:
    """Refuse, before anything is built, a ``last.pt`` whose training state is not whole: each field that
    :meth:`Trainer.checkpoint_state` writes has the type and range it writes (``saved``: the run's config as
    the checkpoint holds it, ``cfg``: the config resumed with). A checkpoint crafted or damaged is named with
    the field, not a traceback from deep in torch."""

    def bad(name: str, what: str) -> CheckpointError:
        return CheckpointError(f"{where}: '{name}' {what}; this is not a whole training state (resume from a "
                               "run's own last.pt, or start a new run)")

    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    epoch = ckpt.get("epoch")
    if not count(epoch) or (saved.epochs is not None and epoch > saved.epochs):
        raise bad("epoch", f"must be the epochs completed, 0 to {saved.epochs}; got {epoch!r}")
    for name, kind in (("model", dict), ("optimizer", dict), ("schedule", dict), ("scaler", dict),
                       ("callbacks", list), ("history", list), ("rng", dict)):
        if not isinstance(ckpt.get(name), kind):
            raise bad(name, f"must be a {kind.__name__}, got {type(ckpt.get(name)).__name__}")
    groups = ckpt["optimizer"].get("param_groups")
    if not isinstance(groups, list) or not groups or not isinstance(ckpt["optimizer"].get("state"), dict):
        raise bad("optimizer", "must hold its state and at least one parameter group")
    if not count(ckpt["schedule"].get("steps")):
        raise bad("schedule", "must count its steps")
    if len(ckpt["history"]) != epoch or not all(isinstance(r, dict) for r in ckpt["history"]):
        raise bad("history", f"must hold one record per epoch completed ({epoch}), got {len(ckpt['history'])}")
    state = ckpt["rng"].get("torch")
    if not isinstance(state, Tensor) or state.dtype != torch.uint8 or state.shape != torch.get_rng_state().shape:
        raise bad("rng", f"must hold torch's generator state (a uint8 tensor of {torch.get_rng_state().numel()})")
    position = ckpt.get("position")
    if position is not None:
        sums = position.get("sums") if isinstance(position, dict) else None
        if (not isinstance(position, dict) or not count(position.get("step")) or not count(position.get("seen"))
                or not isinstance(position.get("seconds"), (int, float)) or not isinstance(sums, dict)
                or not all(isinstance(k, str) and isinstance(v, (int, float)) and math.isfinite(v)
                           for k, v in sums.items())):
            raise bad("position", "must be a mid-epoch position: step, seen, seconds and the epoch's sums")
    if cfg.epochs is not None and cfg.epochs < epoch:
        raise ConfigError(f"--epochs {cfg.epochs}: {where} has trained {epoch} epochs already; give more epochs "
                          "to extend it (or as many to just finish it)")


class Task(Protocol):
    """What a task must provide to be trained by :class:`Trainer`."""

    model: nn.Module

    def configure_optimizers(self, cfg: TrainConfig) -> torch.optim.Optimizer: ...
    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]: ...
    def validation_step(self, batch: Any) -> None: ...
    def validation_epoch_end(self) -> dict[str, float]: ...
    def checkpoint_meta(self) -> dict[str, Any]: ...


@dataclass
class FitResult:
    run_dir: Path
    history: list[dict[str, float]]
    best_epoch: int | None
    best: float | None
    stop_reason: str | None
    seconds: float = 0.0
    notes: dict[int, str] = field(default_factory=dict)  # epoch -> what its validation found degenerate

    @property
    def best_note(self) -> str | None:
        """What was degenerate about the best epoch's validation (best.pt's), if anything."""
        return self.notes.get(self.best_epoch) if self.best_epoch is not None else None

    @property
    def epochs_run(self) -> int:
        return len(self.history)


def _has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def averaged_model(model: nn.Module, decay: float, ramp: float = 2000.0) -> torch.optim.swa_utils.AveragedModel:
    """torch's :class:`~torch.optim.swa_utils.AveragedModel` as an exponential moving average of the weights
    and buffers, its decay ramped up as ``decay * (1 - exp(-step / ramp))`` (YOLOv5/v8's: early averages
    follow the fast-moving weights instead of the random initialisation)."""
    from torch.optim.swa_utils import AveragedModel

    if not 0 < decay < 1:
        raise ConfigError(f"--ema must be in (0, 1), e.g. 0.9998; got {decay}")

    def ema(averaged: Tensor, current: Tensor, steps: Tensor) -> Tensor:
        d = decay * (1 - math.exp(-(int(steps) + 1) / ramp))
        return averaged * d + current * (1 - d)

    return AveragedModel(model, avg_fn=ema, use_buffers=True)


@dataclass
class Trainer:
    """Fits a :class:`Task` with the options of a :class:`~dcvkit.config.TrainConfig`.

    Writes into ``run_dir``: ``last.pt`` and ``best.pt`` (atomically), ``metrics.csv``, TensorBoard
    events under ``tensorboard/``. Checkpoints hold only tensors and plain values, so they load with
    ``torch.load(..., weights_only=True)``.
    """

    task: Task
    cfg: TrainConfig
    run_dir: Path
    callbacks: list[Callback] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.world, self.device = distributed.setup(self.cfg.device)
        self.is_main = self.world.is_main
        model = self.task.model.to(self.device)
        self.channels_last = _has_conv(model)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.use_amp = self.cfg.amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.optimizer = self.task.configure_optimizers(self.cfg)
        self.ema = averaged_model(model, self.cfg.ema) if self.cfg.ema else None
        self.manual_optimization = bool(getattr(self.task, "manual_optimization", False))
        # Under torchrun: the training step as a DDP module (it synchronises the gradients in backward).
        distributed.check_trainable(self.task, self.world)
        self.ddp: nn.Module | None = None
        if self.world.distributed:
            self.ddp = distributed.wrap(self.task, self.device,
                                        bool(getattr(self.task, "find_unused_parameters", False)))
        self.history: list[dict[str, float]] = []
        self.notes: dict[int, str] = {}  # epoch -> the task's validation_notes(), joined
        self.epoch = 0  # epochs completed
        self.schedule: LRSchedule | None = None
        self._stop_reason: str | None = None
        self._signal: int | None = None  # SIGINT/SIGTERM received: save and stop after this step
        self._deadline: float | None = None  # --max-time, as a time.monotonic() value (a schedule not fitted to it)
        self._budget: float | None = None  # --max-time in seconds, when the schedule is fitted to it
        self._t_fit = 0.0  # time.monotonic() when fit started
        self._val_seconds = 0.0  # the last validation's duration: kept in reserve at the end of a fitted run
        self._cut: tuple[int, int] | None = None  # (step, steps) where the time ended an epoch early
        self._resume_at: dict[str, Any] | None = None  # a mid-epoch checkpoint's position and running sums
        self._stop_at_end = False  # asked to stop during an epoch's last step (decided alike on every rank)
        self.checkpointer = Checkpointer(self.run_dir, self.cfg.monitor)
        cbs: list[Callback] = [CSVLogger(self.run_dir / "metrics.csv")]
        if self.cfg.patience > 0:
            cbs.append(EarlyStopping(self.cfg.monitor, self.cfg.patience, self.cfg.min_delta))
        if self.cfg.tensorboard:
            cbs.append(TensorBoard(self.run_dir / "tensorboard", self.cfg.histogram_freq))
        # The checkpointer runs last, so the state it saves includes every other callback's update.
        self.callbacks = cbs + list(self.callbacks) + active_extra_callbacks() + [self.checkpointer]

    # --- public API ------------------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Ask the loop to stop after this epoch (used by early stopping)."""
        self._stop_reason = reason

    def fit(self, train: Batches, val: Batches | None = None, resume: dict[str, Any] | None = None) -> FitResult:
        """Train for the configured epochs (from ``resume``, a checkpoint's contents, when given). Under
        torchrun ``train`` is this rank's shard and ``val`` is read by rank 0 only."""
        saved_fitted = bool(resume is not None and (resume.get("schedule") or {}).get("fitted"))
        self.schedule = LRSchedule(self.optimizer, self.cfg, len(train),
                                   fitted=bool(self.cfg.max_time and self.cfg.fit_schedule) or saved_fitted)
        if resume is not None:
            self._restore(resume, fresh=[{k: v for k, v in g.items() if k != "params"}
                                         for g in self.optimizer.param_groups])
        if self.world.rank > 0:  # dropout and other draws differ between ranks (rank 0 keeps the run's stream)
            torch.manual_seed(epoch_seed(self.cfg.seed, self.epoch))
        if self.world.distributed:
            self._record_shards(train)
        callbacks = self._callbacks_here()
        for cb in callbacks:
            cb.on_fit_start(self)
        t0 = time.perf_counter()
        self._t_fit = time.monotonic()
        if self.cfg.max_time and self.schedule.fitted:  # the schedule ends when the time does (LRSchedule)
            self._budget = 60 * self.cfg.max_time
        elif self.cfg.max_time:  # any other schedule: stop there, mid-epoch, with a resumable last.pt
            self._deadline = self._t_fit + 60 * self.cfg.max_time
        try:
            with self._catch_signals():
                while self.epoch < self.cfg.epochs and self._stop_reason is None:
                    record = self._run_epoch(train, val)
                    if record is None:  # stopped mid-epoch by --max-time, last.pt written
                        break
                    self.history.append(record)
                    self.epoch += 1
                    for cb in callbacks:
                        cb.on_epoch_end(self, record)
                    self._print_epoch(record)
                    self._after_fitted_epoch()
                    if self._stop_at_end:  # a signal or --max-time during the epoch's last step: last.pt is written
                        self._stop(len(train), len(train))
        finally:
            for cb in callbacks:
                cb.on_fit_end(self)
        if self._stop_reason and self.cfg.progress:
            console.print(f"[yellow]{self._stop_reason}[/]", soft_wrap=True)
        tr = self.checkpointer.tracker
        return FitResult(self.run_dir, self.history, tr.best_epoch, tr.best, self._stop_reason,
                         time.perf_counter() - t0, dict(self.notes))

    def to_device(self, batch: Any) -> Any:
        """Move every tensor of a batch to the device; 4-D image tensors become channels-last."""
        if isinstance(batch, Tensor):
            batch = batch.to(self.device, non_blocking=True)
            if self.channels_last and batch.ndim == 4:
                batch = batch.contiguous(memory_format=torch.channels_last)
            return batch
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.to_device(b) for b in batch)
        if isinstance(batch, dict):
            return {k: self.to_device(v) for k, v in batch.items()}
        return batch

    def autocast(self):
        return torch.autocast("cuda", dtype=self.amp_dtype) if self.use_amp else nullcontext()

    def checkpoint_state(self, position: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything a resumed run needs. ``position``: mid-epoch, the steps done in the current epoch
        and that epoch's running sums (``epoch`` counts completed epochs either way)."""
        assert self.schedule is not None
        ema = {}
        if self.ema is not None:  # "model" is what inference loads: the averaged weights; training's own apart
            ema = {"train_model": self.task.model.state_dict(), "ema_steps": int(self.ema.n_averaged)}
        return {
            "format": "dcvkit-checkpoint-1",
            "epoch": self.epoch,
            "position": position,
            "generators": self._generator_states(),
            "model": self.ema.module.state_dict() if self.ema is not None else self.task.model.state_dict(),
            **ema,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "history": self.history,
            "rng": rng_state(),
            "config": to_dict(self.cfg),
            "meta": self.task.checkpoint_meta(),
        }

    def commit(self, targets: list[Path], position: dict[str, Any] | None = None) -> None:
        """Save the training state to ``targets`` (last.pt, and best.pt when it improved), then, once that is
        on disk, ``config.yaml`` if it changed: a resumed run's files describe the state saved, never one
        ahead of it (``--resume RUN --epochs N`` rewrites config.yaml only with the first checkpoint of N)."""
        save_checkpoint(targets, self.checkpoint_state(position))
        path = self.run_dir / "config.yaml"
        text = yaml.safe_dump(to_dict(self.cfg), sort_keys=False)
        if not path.is_file() or path.read_text() != text:
            atomic_write(path, text)

    # --- internals ---------------------------------------------------------------------------------

    def _callbacks_here(self) -> list[Callback]:
        """The callbacks this process runs: all of them on rank 0; elsewhere only those that steer training
        (``all_ranks = True``: early stopping), which see the same broadcast metrics on every rank."""
        return [cb for cb in self.callbacks if self.is_main or getattr(cb, "all_ranks", False)]

    def _record_shards(self, train: Batches) -> None:
        """``distributed.json`` in the run directory: the world, and which images the ranks read in the first
        epoch trained (gathered from every rank): how many each, how many read twice (0), how many in all."""
        import socket

        import torch.distributed as dist

        from dcvkit.io import write_json

        indices = getattr(train, "indices", None)
        parts = distributed.gather(indices().to(self.device)) if indices is not None else []
        hosts: list[Any] = [None] * self.world.size
        dist.all_gather_object(hosts, socket.gethostname())
        if not self.is_main:
            return
        seen = torch.cat(parts).cpu() if parts else torch.empty(0, dtype=torch.long)
        dataset = getattr(train, "data", None)
        dataset = dataset if dataset is not None else getattr(train, "files", ())
        write_json(self.run_dir / "distributed.json", {
            "backend": distributed.backend(), "world_size": self.world.size, "nodes": self.world.nodes,
            "hosts": hosts, "global_batch": self.cfg.batch_size, "rank_batch": getattr(train, "batch_size", None),
            "steps_per_epoch": len(train), "epoch": self.epoch + 1, "dataset_images": len(dataset),
            "images_per_rank": [len(p) for p in parts], "read_by_two_ranks": len(seen) - len(seen.unique()),
            "images_read": len(seen.unique()), "left_out_this_epoch": len(dataset) - len(seen.unique())})

    def _restore(self, ckpt: dict[str, Any], fresh: list[dict[str, Any]]) -> None:
        """Put the run back where ``ckpt`` left it. ``fresh``: the optimizer's hyperparameters as this run's
        schedule set them at step 0 (a schedule tied to the run's length, extended by ``--epochs``, is replayed
        from them). Each part that does not fit is a one-line error naming it (:func:`check_resumable` has
        checked the types already)."""
        assert self.schedule is not None
        with self._restoring("model"):
            self.task.model.load_state_dict(ckpt.get("train_model", ckpt["model"]))
            if self.ema is not None:
                self.ema.module.load_state_dict(ckpt["model"])
                self.ema.n_averaged.fill_(int(ckpt.get("ema_steps", 0)))
        with self._restoring("optimizer"):
            self.optimizer.load_state_dict(ckpt["optimizer"])
        with self._restoring("schedule"):
            saved_epochs = (ckpt.get("config") or {}).get("epochs")
            saved = ckpt["schedule"]
            refit = bool(saved.get("fitted")) != self.schedule.fitted  # fitted to --max-time now, not before
            if (saved_epochs != self.cfg.epochs or refit) and self.schedule.length_dependent:
                if saved_epochs != self.cfg.epochs:
                    import warnings

                    warnings.warn(f"the {self.schedule.name} schedule is rebuilt for {self.cfg.epochs} epochs (it "
                                  f"was for {saved_epochs}): from here the lr follows a {self.cfg.epochs}-epoch "
                                  f"{self.schedule.name} schedule, a jump from where the old one was", stacklevel=2)
                self.schedule.replay(int(saved["steps"]), fresh, saved.get("progress"))
            else:
                self.schedule.load_state_dict(ckpt["schedule"])
        with self._restoring("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        with self._restoring("callbacks"):
            for cb, state in zip(self.callbacks, ckpt["callbacks"]):
                cb.load_state_dict(state)
        self.history = list(ckpt["history"])
        self.epoch = int(ckpt["epoch"])
        # Random states go back where they were taken: an epoch-end checkpoint's now, before the next epoch
        # starts (and the task reseeds what it reseeds per epoch); a mid-epoch one's after that epoch restarts.
        with self._restoring("rng"):
            set_rng_state(ckpt["rng"])
        with self._restoring("generators"):
            self._set_generators(ckpt.get("generators") or {})
        if ckpt.get("position"):
            self._resume_at = {**ckpt["position"], "rng": ckpt["rng"], "generators": ckpt.get("generators") or {}}

    @contextlib.contextmanager
    def _restoring(self, part: str):
        try:
            yield
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise CheckpointError(f"{self.cfg.resume or 'checkpoint'}: its '{part}' does not fit this run ({first}); "
                                  "resume from the run's own last.pt, or start a new run") from None

    def _task_generators(self) -> dict[str, torch.Generator]:
        """The task's own random generators (e.g. its augmentation's), by name."""
        return self.task.generators() if hasattr(self.task, "generators") else {}

    def _generator_states(self) -> dict[str, Tensor]:
        return {name: g.get_state() for name, g in self._task_generators().items()}

    def _set_generators(self, states: dict[str, Tensor]) -> None:
        gens = self._task_generators()
        for name, state in states.items():
            if name in gens:
                gens[name].set_state(state)

    @contextlib.contextmanager
    def _catch_signals(self):
        """SIGINT/SIGTERM ask the loop to finish the current step, write a resumable last.pt and stop
        (:class:`Interrupted`); a second Ctrl-C stops at once. Only the main thread can take signals."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._signal = signum

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    @property
    def _stop_now(self) -> bool:
        return self._signal is not None or (self._deadline is not None and time.monotonic() > self._deadline)

    def _stop(self, step: int, steps: int) -> None:
        """After last.pt was written at ``step``: raise :class:`Interrupted` for a signal, else record the
        --max-time stop (the loop returns normally)."""
        where = f"epoch {self.epoch + (step < steps)}, step {step}/{steps}"
        resume = f"{self.run_dir / 'last.pt'} holds the run up to there; continue with --resume {self.run_dir}"
        if self._signal is not None:
            raise Interrupted(f"interrupted by {signal.Signals(self._signal).name} at {where}: {resume}",
                              self._signal)
        self._stop_reason = f"stopped by --max-time {self.cfg.max_time:g} min at {where}: {resume}"

    def check_weights(self, step: int) -> None:
        """Raise :class:`TrainingDiverged` if the last update left non-finite weights (so none are saved)."""
        if not all(bool(torch.isfinite(p).all()) for p in self.task.model.parameters()):
            raise self._diverged(float("nan"), step)

    def _diverged(self, value: float, step: int) -> TrainingDiverged:
        last = self.run_dir / "last.pt"
        kept = (f"the last good checkpoint is kept at {last} (epoch {self.epoch})" if last.exists()
                else "no checkpoint had been written yet")
        return TrainingDiverged(
            f"training diverged: loss is {value} at epoch {self.epoch + 1}, step {step}; {kept}. "
            "Try a lower --lr (or a warm-up), and check the data for NaN/Inf values"
        )

    def _run_epoch(self, train: Batches, val: Batches | None) -> dict[str, float] | None:
        """One epoch (or the rest of one, after a mid-epoch checkpoint); its record, or None when --max-time
        stopped it midway (after writing last.pt)."""
        model, opt, schedule = self.task.model, self.optimizer, self.schedule
        assert schedule is not None
        model.train()
        if hasattr(self.task, "on_train_epoch_start"):  # e.g. freeze or unfreeze a pretrained backbone
            self.task.on_train_epoch_start(self.epoch)
        train.set_epoch(self.epoch)
        sums: dict[str, Tensor] = {}
        seen, done, elapsed = 0, 0, 0.0
        if self._resume_at is not None:  # mid-epoch checkpoint: the same position, sums and random states
            at, self._resume_at = self._resume_at, None
            done, seen, elapsed = int(at["step"]), int(at["seen"]), float(at["seconds"])
            sums = {k: torch.tensor(v, dtype=torch.float32, device=self.device) for k, v in at["sums"].items()}
            if not self.is_main:  # the saved sums are over every rank: rank 0 carries them
                sums = {k: torch.zeros_like(v) for k, v in sums.items()}
                seen = 0
            set_rng_state(at["rng"])
            self._set_generators(at["generators"])
        # On CPU reading the loss costs nothing, so check it every step; on CUDA it forces a sync, so
        # check every 20 steps, and before any checkpoint is written.
        check_every = 1 if self.device.type == "cpu" else 20
        save_every = self.cfg.save_every_steps
        steps = len(train)
        t0 = time.perf_counter() - elapsed
        with self._progress(steps) as bar:
            bar.advance(done, seen, sums)
            for step, batch in enumerate(itertools.islice(iter(train), done, None), done + 1):
                batch = self.to_device(batch)
                n = batch[0].shape[0] if isinstance(batch, (list, tuple)) and isinstance(batch[0], Tensor) else 1
                try:
                    with self.autocast():
                        loss, logs = self.ddp(batch) if self.ddp is not None else self.task.training_step(batch)
                    if not self.manual_optimization:
                        opt.zero_grad(set_to_none=True)
                        self.scaler.scale(loss).backward()
                        self.scaler.step(opt)
                        self.scaler.update()
                    if self.ema is not None:
                        self.ema.update_parameters(model)
                except torch.OutOfMemoryError:
                    raise ResourceError(
                        f"out of {self.device.type.upper()} memory at epoch {self.epoch + 1}, step {step} with "
                        f"{n} images per step; lower --batch-size (or --img-size), or use --amp") from None
                logs = {"loss": loss.detach(), **logs}
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v.detach().float() * n
                seen += n
                save = step < steps and save_every > 0 and step % save_every == 0
                stop = self._stop_now
                used = self._time_used()  # a fitted schedule's share of --max-time (None: not fitted to one)
                # (distributed: a rank's own wish to stop waits for the next check, which every rank makes; so
                # does its clock: the schedule moves by the ranks' mean time there, alike on every rank)
                if step % check_every == 0 or step == steps or save or (stop and not self.world.distributed):
                    value, stop, used = self._agree(loss, stop, used)
                    if not math.isfinite(value):
                        raise self._diverged(value, step)
                    self._stop_at_end = stop and step == steps
                else:
                    stop = False
                    used = None if self.world.distributed else used
                schedule.step_batch(used)
                if schedule.finished and step < steps and not stop:  # the time is up: this epoch ends here
                    self._cut = (step, steps)
                    bar.advance(step, seen, sums)
                    break
                if step < steps and (save or stop):
                    self._save_position(step, seen, sums, time.perf_counter() - t0)
                    if stop:
                        self._stop(step, steps)
                        return None
                bar.advance(step, seen, sums)
        seconds = time.perf_counter() - t0
        sums, seen = self._over_ranks(sums, seen)  # the epoch's training metrics over every rank's images
        record: dict[str, float] = {"epoch": self.epoch + 1}
        record.update({f"train_{k}": float(v) / max(seen, 1) for k, v in sums.items()})
        if val is not None:
            t_val = time.monotonic()
            record.update(distributed.broadcast(self.validate(val) if self.is_main else None))
            self._val_seconds = time.monotonic() - t_val
            self._note(record)
        record["lr"] = schedule.lr
        record["time_s"] = round(seconds, 3)
        record["images_per_s"] = round(seen / max(seconds, 1e-9), 1)
        schedule.step_epoch(record, self.cfg.monitor)
        return record

    def _agree(self, loss: Tensor, stop: bool, used: float | None) -> tuple[float, bool, float | None]:
        """The loss to check, whether to stop and the share of --max-time used, decided alike on every rank:
        one sum over the ranks of (loss, stop?, time used), so NaN anywhere is NaN everywhere and the time is
        the ranks' mean. One process reads its own."""
        if not self.world.distributed:
            return float(loss.detach()), stop, used
        agreed = distributed.all_sum(torch.stack([loss.detach().float().reshape(()),
                                                  torch.tensor(float(stop), device=loss.device),
                                                  torch.tensor(float(used or 0.0), device=loss.device)]))
        return float(agreed[0]), bool(agreed[1] > 0), (float(agreed[2]) / self.world.size if used is not None
                                                       else None)

    def _time_used(self) -> float | None:
        """The share of --max-time used, for a schedule fitted to it (None otherwise). The last validation's
        duration is held back (up to half the time), so the final one fits in too."""
        if self._budget is None:
            return None
        return (time.monotonic() - self._t_fit) / (self._budget - min(self._val_seconds, 0.5 * self._budget))

    def _after_fitted_epoch(self) -> None:
        """A schedule fitted to --max-time: after the first epoch, how many epochs the time holds; once the time
        is up (the schedule at its end), stop, saying where."""
        schedule = self.schedule
        assert schedule is not None
        if self._budget is None:
            return
        if self.epoch == 1 and self.history and self.cfg.progress and self.is_main and self._cut is None:
            took = time.monotonic() - self._t_fit
            fit = self._budget / max(took, 1e-9)
            if fit < self.cfg.epochs:
                console.print(f"--max-time {self.cfg.max_time:g} min holds about {fit:.1f} of the {self.cfg.epochs} "
                              f"epochs ({took:.0f} s each with validation): the {schedule.name} schedule is fitted "
                              "to the time and ends with it", highlight=False, soft_wrap=True)
        if schedule.finished and self.epoch < self.cfg.epochs:
            where = f"epoch {self.epoch}" + (f", step {self._cut[0]}/{self._cut[1]}" if self._cut else "")
            self._stop_reason = (f"--max-time {self.cfg.max_time:g} min: the time is up at {where}; the "
                                 f"{schedule.name} schedule fitted to it has ended (lr {schedule.lr:.3g}), and these "
                                 f"weights were validated and saved ({self.run_dir / 'last.pt'})")

    def _over_ranks(self, sums: dict[str, Tensor], seen: int) -> tuple[dict[str, Tensor], int]:
        """Running sums and image counts added up over the ranks (as they are, in one process)."""
        if not self.world.distributed:
            return sums, seen
        keys = list(sums)
        total = distributed.all_sum(torch.stack([*(sums[k].clone() for k in keys),
                                                 torch.tensor(float(seen), device=self.device)]))
        return dict(zip(keys, total[:-1])), int(total[-1])

    def _save_position(self, step: int, seen: int, sums: dict[str, Tensor], seconds: float) -> None:
        """A resumable mid-epoch last.pt (rank 0, with the sums over every rank), unless the step just taken
        left non-finite weights."""
        self.check_weights(step)
        sums, seen = self._over_ranks(sums, seen)
        if self.is_main:
            position = {"step": step, "seen": seen, "seconds": seconds, "sums": {k: float(v) for k, v in sums.items()}}
            self.commit([self.run_dir / "last.pt"], position)

    @torch.inference_mode()
    def validate(self, loader: Iterable[Any]) -> dict[str, float]:
        """The task's validation metrics, with the averaged weights when ``--ema`` is on."""
        self.task.model.eval()
        with self._averaged_weights():
            for batch in loader:
                with self.autocast():
                    self.task.validation_step(self.to_device(batch))
        return self.task.validation_epoch_end()

    def _note(self, record: dict[str, float]) -> None:
        """The task's word on this validation (``validation_notes()``: the model predicts one class everywhere,
        no boxes...), warned about and kept, on rank 0."""
        if not (self.is_main and hasattr(self.task, "validation_notes")):
            return
        notes = [n for n in self.task.validation_notes() if n]
        if notes:
            import warnings

            epoch = int(record["epoch"])
            self.notes[epoch] = "; ".join(notes)
            warnings.warn(f"epoch {epoch}, validation: {self.notes[epoch]}", stacklevel=2)

    @contextlib.contextmanager
    def _averaged_weights(self):
        """The model holds the EMA's weights inside the block (training's own are put back after)."""
        if self.ema is None:
            yield
            return
        own = {k: v.clone() for k, v in self.task.model.state_dict().items()}
        self.task.model.load_state_dict(self.ema.module.state_dict())
        try:
            yield
        finally:
            self.task.model.load_state_dict(own)

    def _progress(self, total: int) -> "_Bar":
        return _Bar(total, f"epoch {self.epoch + 1}/{self.cfg.epochs}", enabled=self.cfg.progress and self.is_main,
                    console=console, unit=" steps", final_line=False)  # the epoch's line follows

    def _print_epoch(self, record: dict[str, float]) -> None:
        if not (self.cfg.progress and self.is_main):
            return
        parts = [f"epoch {int(record['epoch'])}/{self.cfg.epochs}"]
        for k, v in record.items():
            if k in ("epoch", "images_per_s"):
                continue
            parts.append(f"{k} {v:.4g}" if k != "time_s" else f"{v:.1f}s")
        console.print("  ".join(parts), highlight=False, soft_wrap=True)


class _Bar(Bar):
    """The epoch's progress (:class:`dcvkit.progress.Bar`: a rich bar on a terminal, plain lines in a log) with
    the running means of the step's logs."""

    def advance(self, step: int, seen: int, sums: dict[str, Tensor]) -> None:
        if self.enabled:
            self.update(step, lambda: "  ".join(f"{k} {float(v) / max(seen, 1):.4f}" for k, v in sums.items()))
