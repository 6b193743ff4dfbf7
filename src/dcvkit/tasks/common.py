"""What every task's ``train`` shares: resuming a run with its saved config, and the run itself (run
directory, config.yaml, the engine's fit, curves, the test-split evaluation of best.pt)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from torch import Tensor, nn

from dcvkit.config import TrainConfig, from_dict, to_dict
from dcvkit.data import DataSplits
from dcvkit.data.core import Shard
from dcvkit.engine import FitResult, Trainer
from dcvkit.errors import CheckpointError, ConfigError
from dcvkit.io import load_checkpoint, new_run_dir, write_yaml

C = TypeVar("C")


def resume_config(cls: type[C], cfg: C) -> tuple[C, dict[str, Any], Path]:
    """The saved config of the run to resume (``cfg.resume``), with the explicitly changed options of
    ``cfg`` on top; returns (config, checkpoint, run directory)."""
    path = Path(cfg.resume)  # type: ignore[attr-defined]
    ckpt_path = path / "last.pt" if path.is_dir() else path
    ckpt = load_checkpoint(ckpt_path)
    if "config" not in ckpt or "optimizer" not in ckpt:
        raise CheckpointError(f"{ckpt_path}: not a resumable dcvkit checkpoint (no optimizer state)")
    defaults = cls()
    changed = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)  # type: ignore[arg-type]
               if getattr(cfg, f.name) != getattr(defaults, f.name) and f.name != "resume"}
    # --max-time is a budget for one invocation: the saved one does not carry over
    saved = from_dict(cls, {**ckpt["config"], "max_time": getattr(cfg, "max_time", None)}, where=str(ckpt_path))
    resumed = from_dict(cls, changed, base=saved, where="resume options")
    resumed.resume = str(cfg.resume)  # type: ignore[attr-defined]
    return resumed, ckpt, ckpt_path.parent


class Normalising:
    """``preprocess`` for tasks with ``mean``, ``std`` (per channel, [0, 1] units) and an optional
    ``augmenter``: the augmentation's own standardization when it has one, else the data's mean/std."""

    mean: list[float]
    std: list[float]
    augmenter: Any
    _norm: tuple[Tensor, Tensor] | None = None

    def generators(self) -> dict[str, torch.Generator]:
        """The random generators a training step draws from besides torch's (the engine checkpoints them)."""
        return {"augment": self.augmenter.generator} if self.augmenter is not None else {}

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 (or augmented float, pixel units) (B, C, H, W) -> normalised float."""
        if self.augmenter is not None and self.augmenter.cfg.standardizes:
            return self.augmenter.standardize(images)
        if self._norm is None or self._norm[0].device != images.device:
            m = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1) * 255
            s = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1) * 255
            self._norm = (m, s)
        m, s = self._norm
        return (images.float() - m) / s


@dataclass
class TrainResult:
    run_dir: Path
    fit: FitResult
    test: dict[str, Any] | None
    splits: DataSplits


def fit_run(task: Any, cfg: TrainConfig, splits: DataSplits, run_dir: Path | None, subdir: str,
            evaluate: Callable[..., dict[str, Any]], ckpt: dict[str, Any] | None = None, val_batch: int = 512,
            test: bool = True, callbacks: list[Any] | None = None) -> TrainResult:
    """Create the run directory (``<project>/<subdir>/<name>`` unless given), save the config, fit ``task``
    on ``splits`` with the engine (plus the task's own ``callbacks``), plot the curves, and
    ``evaluate(best.pt, data=test split, ...)``."""
    from dcvkit.engine import distributed

    w, _ = distributed.setup(cfg.device)
    if (cfg.devices > 1 or cfg.num_nodes > 1) and not w.distributed and not cfg.resume:
        raise ConfigError(f"--devices {cfg.devices} --num-nodes {cfg.num_nodes}: the dcv command starts the "
                          "processes; from Python, start the script under torchrun --nproc-per-node N")
    cfg = dataclasses.replace(cfg, devices=w.local_size, num_nodes=w.nodes)  # what ran (a resume may differ)
    distributed.check_trainable(task, w)
    rank_batch = distributed.check_batch_size(cfg.batch_size, w)
    if w.is_main:  # one run directory, made by rank 0 and told to the others
        run_dir = Path(run_dir) if run_dir else new_run_dir(Path(cfg.project) / subdir, cfg.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(run_dir / "config.yaml", to_dict(cfg))
    run_dir = distributed.broadcast(run_dir)
    model = task.model
    if cfg.progress and w.is_main:
        from dcvkit.engine.loop import console

        console.print(f"{splits.summary()}\nmodel {getattr(cfg, 'model', type(model).__name__)}: "
                      f"{sum(p.numel() for p in model.parameters()):,} parameters; run directory {run_dir}",
                      highlight=False)
    trainer = Trainer(task, cfg, run_dir, list(callbacks or []))
    train_loader = splits.train.loader(rank_batch, shuffle=True, seed=cfg.seed,
                                       workers=cfg.workers, shard=Shard(w.rank, w.size))
    val_loader = splits.val.loader(val_batch, shuffle=False, workers=cfg.workers) if splits.val is not None else None
    fit = trainer.fit(train_loader, val_loader, resume=ckpt)
    if not w.is_main:  # rank 0 plots and tests
        return TrainResult(run_dir, fit, None, splits)

    from dcvkit.viz.plots import plot_history

    if fit.history:
        plot_history(fit.history, run_dir / "curves.png")
    result = None
    if test and splits.test is not None and (run_dir / "best.pt").exists():  # (--max-time may stop before one)
        result = evaluate(run_dir / "best.pt", data=splits.test, device=cfg.device, out_dir=run_dir)
    return TrainResult(run_dir, fit, result, splits)


def load_run_model(weights: str | os.PathLike, task: str, train_command: str, device: str = "cpu",
                   ckpt: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The model of a ``task`` checkpoint (eval mode, on ``device``) and its meta, from a run directory or a
    .pt file (``ckpt``: its contents when the caller has loaded them). Checkpoints of another task or of
    another program are refused naming the command that makes the right ones."""
    from dcvkit.engine import resolve_device
    from dcvkit.models import create_model

    ckpt = ckpt if ckpt is not None else load_checkpoint(weights, map_location="cpu")
    meta = ckpt.get("meta")
    if not meta or meta.get("task") != task:
        kind = f"a {meta['task']} checkpoint" if meta and "task" in meta else "not a dcvkit checkpoint"
        raise CheckpointError(f"{weights}: {kind}; this needs a run of {train_command}")
    model = create_model(meta["model"], **meta["model_kwargs"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{weights}: weights do not fit model '{meta['model']}' ({str(e).splitlines()[0]})")
    return model.to(resolve_device(device)).eval(), meta


__all__ = ["resume_config", "fit_run", "TrainResult", "Normalising", "load_run_model"]
