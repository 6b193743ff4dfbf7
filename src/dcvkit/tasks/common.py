"""What every task's glue shares: resuming a run with its saved config, the model's builder kwargs from the
config, the image tasks' normalisation and augmentation, and the run itself (run directory, config.yaml,
the engine's fit, curves, the test-split evaluation of best.pt)."""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import torch
from torch import Tensor

from dcvkit.config import TrainConfig, from_dict, to_dict, validate
from dcvkit.data import DataSplits
from dcvkit.data.core import Shard
from dcvkit.engine import FitResult, Trainer, build_optimizer, param_groups
from dcvkit.errors import CheckpointError, ConfigError
from dcvkit.io import load_checkpoint, new_run_dir, write_yaml
from dcvkit.models.normalise import Normaliser

if TYPE_CHECKING:
    from dcvkit.tasks import TaskSpec

C = TypeVar("C")


def start_config(cfg: C, run_dir: str | os.PathLike | None = None
                 ) -> tuple[C, dict[str, Any] | None, Path | None]:
    """What every task's ``train`` starts with: ``cfg`` checked against its declarations (however it was made:
    flags, YAML, Python, a tune trial) and, with ``cfg.resume``, the run to continue. Returns (config,
    checkpoint to resume or None, run directory: the resumed one, else ``run_dir``)."""
    cfg = validate(cfg, "config")
    if not getattr(cfg, "resume", None):
        return cfg, None, Path(run_dir) if run_dir else None
    return resume_config(type(cfg), cfg)


def resume_config(cls: type[C], cfg: C) -> tuple[C, dict[str, Any], Path]:
    """The saved config of the run to resume (``cfg.resume``), with the options given now on top (those the
    command line or file named, else those that differ from the defaults); returns (config, checkpoint, run
    directory). A checkpoint of another task is named as such; one whose training state is not whole is
    refused, field by field, before anything is built."""
    from dcvkit.engine.loop import check_resumable
    from dcvkit.tasks import TASKS, task_of_checkpoint

    path = Path(cfg.resume)  # type: ignore[attr-defined]
    ckpt_path = path / "last.pt" if path.is_dir() else path
    ckpt = load_checkpoint(ckpt_path)
    spec = next((t for t in TASKS.values() if issubclass(cls, t.config)), None)
    try:
        owner = task_of_checkpoint(ckpt.get("meta"), str(ckpt_path))
    except ConfigError:
        owner = None
    if owner is not None and spec is not None and owner.meta_task != spec.meta_task:
        raise CheckpointError(f"{ckpt_path}: this is a {owner.name} run, not a {spec.name} one; continue it with "
                              f"dcv {owner.name} train --resume {cfg.resume}")  # type: ignore[attr-defined]
    if not isinstance(ckpt.get("config"), dict) or "optimizer" not in ckpt:
        raise CheckpointError(f"{ckpt_path}: not a resumable dcvkit checkpoint (no config or optimizer state); "
                              "resume from a run's last.pt")
    defaults = cls()
    given = getattr(cfg, "_given", None)  # the names the command line and --config set (config.resolve)
    changed = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)  # type: ignore[arg-type]
               if f.name != "resume" and (f.name in given if given is not None
                                          else getattr(cfg, f.name) != getattr(defaults, f.name))}
    # --max-time is a budget for one invocation: the saved one does not carry over
    saved = from_dict(cls, {**ckpt["config"], "max_time": getattr(cfg, "max_time", None)}, where=str(ckpt_path))
    resumed = from_dict(cls, changed, base=saved, where="resume options")
    resumed.resume = str(cfg.resume)  # type: ignore[attr-defined]
    check_resumable(ckpt, saved, resumed, str(ckpt_path))
    return resumed, ckpt, ckpt_path.parent


def family_entry(task: "TaskSpec", name: str) -> Any:
    """The registry entry of ``name``, which must be a model of the task's family: an unknown name is the
    registry's error, with suggestions; a model of another family is refused with the task's names."""
    from dcvkit.models import list_models, model_entry

    entry = model_entry(name)
    if entry.task != task.family:
        raise ConfigError(f"'{name}' is a {entry.task} model, not a {task.family} one; choose one of "
                          f"{', '.join(list_models(task.family))}")
    return entry


def family_class(task: "TaskSpec", name: str) -> type:
    """The class of the models ``name`` builds: what its family says about itself (a detector's kind and
    defaults, a generator's trainer...)."""
    return family_entry(task, name).model_class


def fill_defaults(cfg: C, model_class: type, defaults: dict[str, Any]) -> C:
    """``cfg`` with the options it leaves to the model (None: epochs, batch size...) set from the model class's
    ``defaults``, else the family's ``defaults``."""
    d = {**defaults, **getattr(model_class, "defaults", {})}
    return dataclasses.replace(cfg, **{k: d[k] for k in defaults if getattr(cfg, k) is None})  # type: ignore


def model_kwargs(task: "TaskSpec", cfg: Any, **from_data: Any) -> dict[str, Any]:
    """The registry kwargs of ``cfg.model``: ``from_data`` (classes, channels, size) and each of the task's
    model options (:attr:`TaskSpec.model_options`) that the builder names and the config sets.

    An option the builder does not name is dropped, unless it was set although its default is None: such
    options exist to be asked of the models that have them (``--arch`` of a VAE), so asking one of another
    model is an error naming the models that take it. Options with a real default (``--backbone cnn``) are
    settings shared by a comparison, which the models without them ignore (their help says so). A model of
    another family is refused with the family's names."""
    from dcvkit.models import list_models, model_entry

    entry = family_entry(task, cfg.model)
    defaults = type(cfg)()
    kw = dict(from_data)
    for name in task.model_options:
        value = getattr(cfg, name)
        if name in entry.options:
            if value is not None:
                kw[name] = value
        elif value is not None and getattr(defaults, name) is None:
            flag = "--" + name.replace("_", "-")
            others = [m for m in list_models(task.family) if name in model_entry(m).options]
            takes = [f"--{o.replace('_', '-')}" for o in task.model_options if o in entry.options]
            raise ConfigError(f"{flag} is an option of {', '.join(others) or 'no ' + task.family + ' model'}, not "
                              f"of {cfg.model} (its options: {', '.join(takes) or 'none'})")
    return kw


class ImageTask:
    """What the tasks that learn from images share: the run's :class:`~dcvkit.models.normalise.Normaliser`
    (pixels -> model input: the one implementation, also used by predict, export and the explanations),
    its optional augmenter, and the random generators a training step draws from besides torch's (the
    engine checkpoints them)."""

    normaliser: Normaliser
    augmenter: Any = None

    def generators(self) -> dict[str, torch.Generator]:
        return {"augment": self.augmenter.generator} if self.augmenter is not None else {}

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 (or augmented float, pixel units) (B, C, H, W) -> normalised float."""
        return self.normaliser(images)

    def normalisation_meta(self) -> dict[str, Any]:
        """What a checkpoint records so that :meth:`Normaliser.from_meta` rebuilds the same normalisation."""
        meta: dict[str, Any] = {"mean": list(self.normaliser.stats[0]), "std": list(self.normaliser.stats[1])}
        if self.augmenter is not None:
            meta["augment"] = self.augmenter.state()
        return meta


class ModelLossTask(ImageTask):
    """What the tasks share whose model computes its own loss (``model.loss``: pose, scene graphs): the seeded
    generator of the training flips (checkpointed with the run), the optimizer over the trainable parameters
    and the validation loss averaged over images. Subclasses set ``self.flips`` and ``self._sums = []``."""

    flips: torch.Generator
    _sums: list[Tensor]

    def generators(self) -> dict[str, torch.Generator]:
        return {**super().generators(), "flips": self.flips}

    def configure_optimizers(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        return build_optimizer(param_groups([p for p in self.model.parameters() if p.requires_grad],  # type: ignore
                                            cfg.weight_decay), cfg)

    def random_flip(self, images: Tensor, boxes: list[Tensor], vertical: bool = False
                    ) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Half of the images mirrored left-right (or upside down: ``vertical``; drawn from ``flips``) with their
        boxes: (which were, images, boxes); the task mirrors what else the images carry."""
        from dcvkit.augment import functional as aug

        flip = torch.rand(len(images), generator=self.flips) < 0.5
        h, v = (torch.zeros_like(flip), flip) if vertical else (flip, torch.zeros_like(flip))
        return flip, aug.flip(images, h, v), aug.flip_boxes(boxes, h, v, tuple(images.shape[-2:]))

    def add_val_loss(self, loss: Tensor, images: int) -> None:
        self._sums.append(torch.stack([loss.detach().float() * images, loss.new_tensor(float(images))]))

    def val_loss(self) -> float:
        """The mean validation loss since the last call."""
        total, n = torch.stack(self._sums).sum(0).tolist()
        self._sums.clear()
        return total / n


def flag_notes(results: dict[str, Any], notes: list[str], degenerate: str | None = None) -> dict[str, Any]:
    """What makes ``results`` untrustworthy (``notes``, in words), joined into its ``warning`` and warned about;
    nothing when there are none. ``degenerate``: the model's output is no answer at all (one class everywhere,
    no boxes, the same for every image: :mod:`dcvkit.metrics.degenerate`), also kept as
    ``results["degenerate"]``, the flag a script checks. Returns ``results``."""
    if degenerate:
        results["degenerate"] = degenerate
    notes = [n for n in ([degenerate] if degenerate else []) + list(notes) if n]
    if notes:
        results["warning"] = "; ".join(notes)
        warnings.warn(results["warning"], stacklevel=3)
    return results


@dataclass
class TrainResult:
    """What a task's ``train`` returns: the run directory, the fit's history, the test split's scores (None
    without a test split), the data it trained on and the config it ran with (as config.yaml saved it)."""

    run_dir: Path
    fit: FitResult
    test: dict[str, Any] | None
    splits: DataSplits
    config: Any = None


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
        if ckpt is None:  # a resumed run's config.yaml changes with its first new checkpoint (Trainer.commit)
            write_yaml(run_dir / "config.yaml", to_dict(cfg))
    run_dir = distributed.broadcast(run_dir)
    model = task.model
    if cfg.progress and w.is_main:
        from dcvkit.engine.loop import console

        console.print(f"{splits.summary()}\nmodel {getattr(cfg, 'model', type(model).__name__)}: "
                      f"{sum(p.numel() for p in model.parameters()):,} parameters; run directory {run_dir}",
                      highlight=False)
    if splits.val is not None and w.is_main:
        from dcvkit.metrics.classification import small_split_note

        note = small_split_note("validation", len(splits.val), f"{cfg.monitor}")
        if note:  # best.pt, early stopping and the plateau schedule follow this split
            warnings.warn(f"{note}; best.pt and early stopping follow it (ties are broken by validation loss): "
                          "use a larger --val-split or a val/ folder", stacklevel=2)
    trainer = Trainer(task, cfg, run_dir, list(callbacks or []))
    train_loader = splits.train.loader(rank_batch, shuffle=True, seed=cfg.seed,
                                       workers=cfg.workers, shard=Shard(w.rank, w.size))
    val_loader = splits.val.loader(val_batch, shuffle=False, workers=cfg.workers) if splits.val is not None else None
    fit = trainer.fit(train_loader, val_loader, resume=ckpt)
    if not w.is_main:  # rank 0 plots and tests
        return TrainResult(run_dir, fit, None, splits, cfg)

    from dcvkit.viz.plots import plot_history

    if fit.history:
        plot_history(fit.history, run_dir / "curves.png")
    result = None
    if test and splits.test is not None and (run_dir / "best.pt").exists():  # (--max-time may stop before one)
        result = evaluate(run_dir / "best.pt", data=splits.test, split=splits.test_split, device=cfg.device,
                          out_dir=run_dir)
    return TrainResult(run_dir, fit, result, splits, cfg)


__all__ = ["start_config", "resume_config", "fit_run", "TrainResult", "ImageTask", "ModelLossTask", "model_kwargs",
           "family_entry", "family_class", "fill_defaults", "flag_notes"]
