"""One config system: flat ``@dataclass`` configs, YAML files, CLI flags.

Each task has one dataclass (e.g. :class:`dcvkit.tasks.classify.ClassifyConfig`) that inherits the
engine's :class:`TrainConfig`. A field's ``metadata`` carries its help text and choices; the CLI builds
its ``--flags`` from the fields, so the YAML keys and the flags are always the same names.
Precedence: dataclass defaults < ``--config file.yaml`` < explicit ``--flags``. The resolved config is
saved as ``config.yaml`` in the run directory; ``--config runs/.../config.yaml`` repeats a run exactly.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from dcvkit.choices import DEVICES, OPTIMIZERS, SCHEDULERS
from dcvkit.errors import ConfigError

C = TypeVar("C")


def opt(default: Any, help: str, choices: tuple[str, ...] | None = None, flag: str | None = None) -> Any:
    """A config field with its help text (and allowed values) attached."""
    meta = {"help": help, "choices": choices, "flag": flag}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def override(default: Any) -> Any:
    """An inherited field with another default: help and choices stay those of the class that declared it
    (``epochs: int = override(15)`` in a task whose runs want 15 epochs)."""
    return field(default=default, metadata={"inherit": True})


def field_meta(cls: type, name: str) -> Mapping[str, Any]:
    """The help/choices/flag metadata of ``cls``'s field ``name``: its own, or for an :func:`override`, that of
    the nearest base class that declares it."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and not f.metadata.get("inherit"):
            return f.metadata
    return {}


@dataclass
class RunConfig:
    """Run: seed and where outputs go."""

    seed: int = opt(0, "random seed for weights, data order, split and dropout")
    project: str = opt("runs", "root folder of run directories: <project>/<task>/<name>")
    name: str = opt("exp", "run name; a fresh exp, exp2, ... is created, never overwritten")


@dataclass
class DataConfig:
    """Data: which dataset, where it is, how it is split."""

    data: str = opt("fashion-mnist", "named dataset (fashion-mnist, mnist, moving-fashion-mnist) or image folder")
    data_dir: str | None = opt(None, "folder holding the named dataset's files (else $DCV_DATA, ~/.cache/dcvkit, "
                               "/usr/share/datasets/<name>)")
    download: bool = opt(False, "download the named dataset from its official source (checksum-verified)")
    val_split: float = opt(0.1, "fraction of training images held out for validation")
    limit: int | None = opt(None, "use a random subset of this many training images")
    img_size: int | None = opt(None, "resize folder images to this size (default: the first image's)")
    memory_mb: float = opt(2048, "decode the dataset into memory when its decoded images take at most this many MB, "
                                 "else stream them from their files per batch (0: always stream)")


@dataclass
class ImageDataConfig(DataConfig):
    """Data: classes and the form of folder images."""

    classes: str | None = opt(None, "keep only these classes: indices (0-4 or 5,7,9) or names; relabelled in order")
    per_class: int | None = opt(None, "use a random subset of this many training images per class")
    channels: int | None = opt(None, "1 (grayscale) or 3 (RGB) for folder images (default: the first image's)")
    skip_bad: bool = opt(False, "skip unreadable images with a warning instead of stopping")

    def load_splits(self, seed: int = 0):
        from dcvkit.data import load_dataset

        return load_dataset(self.data, data_dir=self.data_dir, download=self.download, val_split=self.val_split,
                            seed=seed, limit=self.limit, img_size=self.img_size, channels=self.channels,
                            skip_bad=self.skip_bad, classes=self.classes, per_class=self.per_class,
                            max_memory_mb=self.memory_mb)


@dataclass
class SceneDataConfig(DataConfig):
    """Data: FashionScenes (Fashion-MNIST items on textured backgrounds) when --data is scenes."""

    data: str = opt("scenes", "scenes (FashionScenes: Fashion-MNIST items on textured backgrounds, 10 item classes), "
                              "or a dataset of your own (see the task's docs)")
    data_dir: str | None = opt(None, "folder holding Fashion-MNIST's files (the scenes' items)")
    img_size: int | None = opt(None, "scene size (default 128), or letterbox a dataset's images to this square size "
                                     "(default: the first image's size, longest side at most 640, sides rounded up to "
                                     "multiples of 32; aspect ratios are kept and the rest padded)")
    scenes: int = opt(4000, "FashionScenes: training scenes (drawn from Fashion-MNIST's train split; the validation "
                            "split comes out of them)")
    test_scenes: int = opt(500, "FashionScenes: test scenes (drawn from Fashion-MNIST's test split)")
    scene_seed: int = opt(0, "FashionScenes: seed of the scenes (kept apart from --seed, so every model of a "
                             "comparison sees the same scenes)")


@dataclass
class TrainConfig(RunConfig):
    """Training: optimisation, learning-rate annealing, stopping, devices, logging."""

    # optimisation
    epochs: int = opt(10, "number of passes over the training set")
    batch_size: int = opt(128, "images per training step")
    lr: float = opt(0.05, "(peak) learning rate")
    optimizer: str = opt("sgd", "optimizer", OPTIMIZERS)
    momentum: float = opt(0.9, "momentum (sgd, rmsprop)")
    nesterov: bool = opt(True, "Nesterov momentum (sgd)")
    weight_decay: float = opt(5e-4, "L2 weight decay (decoupled for adamw)")
    # learning-rate annealing
    scheduler: str = opt("onecycle", "learning-rate schedule", SCHEDULERS)
    warmup_epochs: float = opt(0.0, "linear warm-up from lr/10 over this many epochs (fractions allowed)")
    step_size: int = opt(5, "step: multiply the lr by gamma every step_size epochs")
    gamma: float = opt(0.1, "step/plateau: lr factor; exponential: lr factor per epoch")
    plateau_patience: int = opt(2, "plateau: epochs without improvement before lowering the lr")
    ema: float = opt(0.0, "keep an exponential moving average of the weights with this decay (e.g. 0.9998; "
                          "ramped up over the first ~2000 steps, as YOLOv5/v8 do): validation, best.pt and "
                          "everything after training use the averaged weights (0: off)")
    # when to stop
    patience: int = opt(0, "early stopping: epochs without improvement of --monitor before stopping (0: off)")
    min_delta: float = opt(0.0, "early stopping: smallest change that counts as an improvement")
    monitor: str = opt("val_acc", "metric for early stopping, best.pt and the plateau schedule")
    # runtime
    device: str = opt("auto", "auto picks cuda when available, else cpu", DEVICES)
    amp: bool = opt(True, "mixed precision on CUDA (bf16 where supported, else fp16 + grad scaling)")
    deterministic: bool = opt(False, "use deterministic algorithms (slower; an op without one warns, naming itself)")
    workers: int = opt(2, "data-loader workers for streamed (large) datasets: processes for image folders, "
                          "decoding threads for detection and segmentation files")
    devices: int = opt(1, "training processes on this machine, one per GPU (or CPU processes): >1 runs "
                          "DistributedDataParallel under torch's launcher (torchrun); --batch-size stays the "
                          "global batch")
    num_nodes: int = opt(1, "machines taking part; run the same command on each with MASTER_ADDR and NODE_RANK set "
                            "(README: 'Training on several GPUs or machines')")
    # outputs
    resume: str | None = opt(None, "continue a run: its directory or its last.pt")
    save_every_steps: int = opt(0, "also write a resumable last.pt every N training steps, mid-epoch (a run killed "
                                   "outright resumes from there; 0: at the end of each epoch only)")
    max_time: float | None = opt(None, "stop training after this many minutes with a resumable last.pt "
                                       "(continue with --resume; the limit counts for one invocation)")
    tensorboard: bool = opt(True, "write TensorBoard events (scalars, lr, weight histograms)")
    histogram_freq: int = opt(1, "weight histograms every N epochs, like Keras' histogram_freq (0: off)")
    progress: bool = opt(True, "show a progress bar and one line per epoch")


def config_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in fields(cls)}


def _base_type(tp: Any) -> tuple[type, bool]:
    """(scalar type, optional?) from a field annotation like ``int | None``."""
    if isinstance(tp, str):
        tp = eval(tp, {"typing": typing})  # annotations are postponed strings; they only name builtins
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _coerce(name: str, value: Any, tp: Any, where: str) -> Any:
    base, optional = _base_type(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: '{name}' cannot be empty; give a {base.__name__}")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if base is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if base in (int, float) and isinstance(value, bool):
            raise ValueError(value)
        if base is list:
            return list(value) if isinstance(value, (list, tuple)) else [v for v in str(value).split(",") if v]
        out = base(value)
        if base is float and not math.isfinite(out):
            raise ConfigError(f"{where}: '{name}' must be a finite number, got {value!r}")
        return out
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where}: '{name}' must be {base.__name__}, got {value!r}") from None


def _check_choice(cls: type, name: str, value: Any, where: str) -> None:
    choices = field_meta(cls, name).get("choices")
    if choices and value is not None and value not in choices:
        raise ConfigError(f"{where}: '{name}' must be one of {', '.join(choices)}; got {value!r}")


def _unknown_key(cls: type, key: str, where: str) -> ConfigError:
    names = list(config_fields(cls))
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"{where}: unknown key '{key}'{hint}; valid keys: {', '.join(names)}")


def from_dict(cls: type[C], values: Mapping[str, Any], base: C | None = None, where: str = "config") -> C:
    """Build ``cls`` from ``values`` (on top of ``base`` if given), checking names, types and choices."""
    fdict = config_fields(cls)
    hints = typing.get_type_hints(cls)
    current = dataclasses.asdict(base) if base is not None else {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}: keys are option names, got {key!r}")
        key = key.replace("-", "_")
        if key not in fdict:
            raise _unknown_key(cls, key, where)
        current[key] = _coerce(key, value, hints[key], where)
        _check_choice(cls, key, current[key], where)
    return cls(**current)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load`` (no Python tags), with one-line errors."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{at}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of key: value, got {type(data).__name__}")
    return data


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


# --- argparse bridge ---------------------------------------------------------------------------------


def _declaring_class(cls: type, name: str) -> type:
    """The base-most class that declares ``name``: a field re-declared with a task's own default or help is
    listed in ``--help`` beside its kind (data, training), not among the task's own options."""
    for klass in reversed(cls.__mro__):
        if name in getattr(klass, "__annotations__", {}):
            return klass
    return cls


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one ``--flag`` per field of ``cls``, grouped by the config class that declares it. Defaults are
    suppressed so that only flags the user typed override the YAML file."""
    hints = typing.get_type_hints(cls)
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of options (flags override it)")
    groups: dict[type, argparse._ArgumentGroup] = {}
    for f in fields(cls):
        if f.name in skip:
            continue
        owner = _declaring_class(cls, f.name)
        if owner not in groups:
            doc = (owner.__doc__ or owner.__name__).strip().splitlines()[0].rstrip(".")
            groups[owner] = parser.add_argument_group(doc)
        group = groups[owner]
        base, _ = _base_type(hints[f.name])
        meta = field_meta(cls, f.name)
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        helptext = meta.get("help", "")
        if "default" not in helptext:
            helptext += f" (default: {default})"
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": helptext.replace("%", "%%")}
        if base is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        else:
            if meta.get("choices"):
                kw["choices"] = meta["choices"]
            group.add_argument(flag, metavar=f.name.upper() if not kw.get("choices") else None, **kw)


def resolve(cls: type[C], args: argparse.Namespace, base: C | None = None) -> C:
    """Defaults (or ``base``) < ``args.config`` YAML < flags given on the command line."""
    cfg = base if base is not None else cls()
    if getattr(args, "config", None):
        cfg = from_dict(cls, load_yaml(args.config), base=cfg, where=str(args.config))
    given = {k: v for k, v in vars(args).items() if k in config_fields(cls)}
    return from_dict(cls, given, base=cfg, where="command line")
