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


@dataclass(frozen=True)
class Bounds:
    """The valid values of a numeric option, declared once beside it (``opt(..., bounds=AT_LEAST_1)``) and
    checked wherever a value comes from: flags, YAML files, tune's search spaces, a checkpoint's config."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # lo itself is not allowed
    hi_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        return not (self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi)))

    def __str__(self) -> str:
        def num(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else f"{x:g}"

        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {num(self.lo)}"  # type: ignore[arg-type]
        if self.lo is None:
            return f"{'<' if self.hi_open else '<='} {num(self.hi)}"
        return f"in {'(' if self.lo_open else '['}{num(self.lo)}, {num(self.hi)}{')' if self.hi_open else ']'}"


AT_LEAST_0 = Bounds(0)
AT_LEAST_1 = Bounds(1)
POSITIVE = Bounds(0, lo_open=True)
FRACTION = Bounds(0, 1)  # a probability, an IoU
BELOW_1 = Bounds(0, 1, hi_open=True)  # dropout, momentum, smoothing: 1 would leave nothing
SEED = Bounds(0, 2**32 - 1)  # what NumPy's and torch's generators take alike
IMAGE_SIDE = Bounds(8, 8192)
CHANNELS = Bounds(1, 1024)
WIDTH = Bounds(0, 16, lo_open=True)  # a channel-width multiplier: 16x is already 256 times the weights


def plain_name(value: str) -> str | None:
    """A run name is one folder name: no separators, no '..', nothing hidden (None: fine, else why not)."""
    if not value or value in (".", "..") or value.startswith(".") or any(c in value for c in "/\\\0:"):
        return "must be a plain folder name (letters, digits, - _ .; no path separators, no leading '.')"
    return None


def opt(default: Any, help: str, choices: tuple[str, ...] | None = None, flag: str | None = None,
        bounds: Bounds | None = None, check: Any = None) -> Any:
    """A config field with its help text and what it accepts attached: ``choices``, numeric ``bounds``, or a
    ``check(value) -> None | why not``."""
    meta = {"help": help, "choices": choices, "flag": flag, "bounds": bounds, "check": check}
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

    seed: int = opt(0, "random seed for weights, data order, split and dropout", bounds=SEED)
    project: str = opt("runs", "root folder of run directories: <project>/<task>/<name>")
    name: str = opt("exp", "run name; a fresh exp, exp2, ... is created, never overwritten", check=plain_name)


@dataclass
class DataConfig:
    """Data: which dataset, where it is, how it is split."""

    data: str = opt("fashion-mnist", "named dataset (fashion-mnist, mnist, moving-fashion-mnist) or image folder")
    data_dir: str | None = opt(None, "folder holding the named dataset's files (else $DCV_DATA, ~/.cache/dcvkit, "
                               "/usr/share/datasets/<name>)")
    download: bool = opt(False, "download the named dataset from its official source (checksum-verified)")
    val_split: float = opt(0.1, "fraction of training images held out for validation", bounds=BELOW_1)
    limit: int | None = opt(None, "use a random subset of this many training images", bounds=AT_LEAST_1)
    img_size: int | None = opt(None, "resize folder images to this size (default: the first image's)",
                               bounds=IMAGE_SIDE)
    memory_mb: float = opt(2048, "decode the dataset into memory when its decoded images take at most this many MB, "
                                 "else stream them from their files per batch (0: always stream)", bounds=AT_LEAST_0)


@dataclass
class ImageDataConfig(DataConfig):
    """Data: classes and the form of folder images."""

    classes: str | None = opt(None, "keep only these classes: indices (0-4 or 5,7,9) or names; relabelled in order")
    per_class: int | None = opt(None, "use a random subset of this many training images per class",
                                bounds=AT_LEAST_1)
    channels: int | None = opt(None, "1 (grayscale) or 3 (RGB) for folder images (default: the first image's)",
                               check=lambda v: None if v in (1, 3) else "must be 1 or 3")
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
                                     "multiples of 32; aspect ratios are kept and the rest padded)", bounds=IMAGE_SIDE)
    scenes: int = opt(4000, "FashionScenes: training scenes (drawn from Fashion-MNIST's train split; the validation "
                            "split comes out of them)", bounds=AT_LEAST_1)
    test_scenes: int = opt(500, "FashionScenes: test scenes (drawn from Fashion-MNIST's test split)",
                            bounds=AT_LEAST_0)
    scene_seed: int = opt(0, "FashionScenes: seed of the scenes (kept apart from --seed, so every model of a "
                             "comparison sees the same scenes)", bounds=SEED)


@dataclass
class TrainConfig(RunConfig):
    """Training: optimisation, learning-rate annealing, stopping, devices, logging."""

    # optimisation
    epochs: int = opt(10, "number of passes over the training set", bounds=AT_LEAST_1)
    batch_size: int = opt(128, "images per training step", bounds=AT_LEAST_1)
    lr: float = opt(0.05, "(peak) learning rate", bounds=POSITIVE)
    optimizer: str = opt("sgd", "optimizer", OPTIMIZERS)
    momentum: float = opt(0.9, "momentum (sgd, rmsprop)", bounds=BELOW_1)
    nesterov: bool = opt(True, "Nesterov momentum (sgd)")
    weight_decay: float = opt(5e-4, "L2 weight decay (decoupled for adamw)", bounds=AT_LEAST_0)
    # learning-rate annealing
    scheduler: str = opt("onecycle", "learning-rate schedule", SCHEDULERS)
    warmup_epochs: float = opt(0.0, "linear warm-up from lr/10 over this many epochs (fractions allowed)",
                               bounds=AT_LEAST_0)
    step_size: int = opt(5, "step: multiply the lr by gamma every step_size epochs", bounds=AT_LEAST_1)
    gamma: float = opt(0.1, "step/plateau: lr factor; exponential: lr factor per epoch",
                        bounds=Bounds(0, 1, lo_open=True, hi_open=True))
    plateau_patience: int = opt(2, "plateau: epochs without improvement before lowering the lr",
                                bounds=AT_LEAST_0)
    ema: float = opt(0.0, "keep an exponential moving average of the weights with this decay (e.g. 0.9998; "
                          "ramped up over the first ~2000 steps, as YOLOv5/v8 do): validation, best.pt and "
                          "everything after training use the averaged weights (0: off)", bounds=BELOW_1)
    # when to stop
    patience: int = opt(0, "early stopping: epochs without improvement of --monitor before stopping (0: off)",
                        bounds=AT_LEAST_0)
    min_delta: float = opt(0.0, "early stopping: smallest change that counts as an improvement",
                            bounds=AT_LEAST_0)
    monitor: str = opt("val_acc", "metric for early stopping, best.pt and the plateau schedule")
    # runtime
    device: str = opt("auto", "auto picks cuda when available, else cpu", DEVICES)
    amp: bool = opt(True, "mixed precision on CUDA (bf16 where supported, else fp16 + grad scaling)")
    deterministic: bool = opt(False, "use deterministic algorithms (slower; an op without one warns, naming itself)")
    workers: int = opt(2, "data-loader workers for streamed (large) datasets: processes for image folders, "
                          "decoding threads for detection and segmentation files", bounds=Bounds(0, 64))
    devices: int = opt(1, "training processes on this machine, one per GPU (or CPU processes): >1 runs "
                          "DistributedDataParallel under torch's launcher (torchrun); --batch-size stays the "
                          "global batch", bounds=Bounds(1, 1024))
    num_nodes: int = opt(1, "machines taking part; run the same command on each with MASTER_ADDR and NODE_RANK set "
                            "(README: 'Training on several GPUs or machines')", bounds=Bounds(1, 1024))
    # outputs
    resume: str | None = opt(None, "continue a run: its directory or its last.pt")
    save_every_steps: int = opt(0, "also write a resumable last.pt every N training steps, mid-epoch (a run killed "
                                   "outright resumes from there; 0: at the end of each epoch only)",
                                 bounds=AT_LEAST_0)
    max_time: float | None = opt(None, "train for at most this many minutes (the limit counts for one "
                                       "invocation): a one-cycle or cosine schedule is fitted to the time and "
                                       "ends with it, the last epoch cut short and validated; any other schedule "
                                       "(or --no-fit-schedule) stops there with a resumable mid-epoch last.pt",
                                 bounds=POSITIVE)
    fit_schedule: bool = opt(True, "with --max-time, anneal a one-cycle or cosine schedule over the time as well "
                                   "as the epochs (whichever ends first), as Ultralytics' time= does; "
                                   "--no-fit-schedule: plan it for --epochs only, so a run stopped and resumed "
                                   "follows it exactly")
    tensorboard: bool = opt(True, "write TensorBoard events (scalars, lr, weight histograms)")
    histogram_freq: int = opt(1, "weight histograms every N epochs, like Keras' histogram_freq (0: off)",
                              bounds=AT_LEAST_0)
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
        raise ConfigError(f"{where}: {_label(name, where)} cannot be empty; give a {base.__name__}")
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
            raise ConfigError(f"{where}: {_label(name, where)} must be a finite number, got {value!r}")
        return out
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where}: {_label(name, where)} must be {base.__name__}, got {value!r}") from None


def _label(name: str, where: str) -> str:
    """How an error names an option: as its flag on the command line, as its key in a file."""
    return f"--{name.replace('_', '-')}" if where == "command line" else f"'{name}'"


def check_value(cls: type, name: str, value: Any, where: str) -> None:
    """The field's declared choices, bounds and check (see :func:`opt`) against ``value``; None passes (the
    type already said whether the field may be empty)."""
    if value is None:
        return
    meta = field_meta(cls, name)
    label = _label(name, where)
    choices, bounds, check = meta.get("choices"), meta.get("bounds"), meta.get("check")
    if choices and value not in choices:
        raise ConfigError(f"{where}: {label} must be one of {', '.join(choices)}; got {value!r}")
    if bounds is not None and value not in bounds:
        raise ConfigError(f"{where}: {label} must be {bounds}, got {value!r}")
    why = check(value) if check is not None else None
    if why:
        raise ConfigError(f"{where}: {label} {why}; got {value!r}")


def validate(cfg: C, where: str = "config") -> C:
    """Every field of ``cfg`` against its declaration, then the config's own cross-field ``check()`` (if it
    has one): what runs before anything is built or written, however the config was made."""
    for f in fields(cfg):  # type: ignore[arg-type]
        check_value(type(cfg), f.name, getattr(cfg, f.name), where)
    if hasattr(cfg, "check"):
        cfg.check(where)  # type: ignore[attr-defined]
    return cfg


def _unknown_key(cls: type, key: str, where: str) -> ConfigError:
    names = list(config_fields(cls))
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"{where}: unknown key '{key}'{hint}; valid keys: {', '.join(names)}")


def from_dict(cls: type[C], values: Mapping[str, Any], base: C | None = None, where: str = "config") -> C:
    """Build ``cls`` from ``values`` (on top of ``base`` if given), checking names, types and choices."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: a config must be a mapping of option: value, got {type(values).__name__}")
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
        check_value(cls, key, current[key], where)
    return validate(cls(**current), where)


#: what one YAML document may expand to: nodes counted with every alias expanded (a "billion laughs" file of
#: under 1 KB expands to 10^9), and nesting
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


def _expanded_size(node: yaml.Node, where: str) -> int:
    """The node count of ``node`` with its aliases expanded (PyYAML shares an alias's objects, so loading
    is cheap; the expansion happens when the values are walked, copied or printed). Refuses a document over
    :data:`MAX_YAML_NODES`, deeper than :data:`MAX_YAML_DEPTH` or with an alias inside itself."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(n: yaml.Node, depth: int) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{where}: YAML nested deeper than {MAX_YAML_DEPTH} levels; a config is flat")
        if id(n) in open_nodes:
            raise ConfigError(f"{where}: a YAML alias refers to the node that holds it (a recursive document)")
        open_nodes.add(id(n))
        children: list[yaml.Node] = []
        if isinstance(n, yaml.SequenceNode):
            children = list(n.value)
        elif isinstance(n, yaml.MappingNode):
            children = [c for pair in n.value for c in pair]
        total = 1
        for c in children:
            total += size(c, depth + 1)
            if total > MAX_YAML_NODES:
                raise ConfigError(f"{where}: YAML that expands to more than {MAX_YAML_NODES:,} values (aliases "
                                  "repeated inside aliases: a 'billion laughs' file); refused")
        open_nodes.discard(id(n))
        sizes[id(n)] = total
        return total

    return size(node, 0)


def safe_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` (no Python tags) of one document whose size is bounded (:func:`_expanded_size`):
    every YAML dcvkit reads goes through here. Errors are one line naming ``where``."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # (its reader already refuses control characters)
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{where}: YAML nested too deeply to read; a config is flat") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(path: str | os.PathLike, mapping: bool = True) -> Any:
    """Read a YAML file through :func:`safe_yaml`, with one-line errors; a mapping (``mapping=False``: any
    value, e.g. a list of class names)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config ({getattr(e, 'strerror', None) or e})") from None
    data = safe_yaml(text, str(path))
    if data is None:
        return {} if mapping else None
    if mapping and not isinstance(data, dict):
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
        bounds = meta.get("bounds")
        if "default" not in helptext:
            helptext += f" (default: {default}{'; ' + str(bounds) if bounds else ''})"
        elif bounds:
            helptext += f" ({bounds})"
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
    named: set[str] = set()
    if getattr(args, "config", None):
        values = load_yaml(args.config)
        cfg = from_dict(cls, values, base=cfg, where=str(args.config))
        named |= {str(k).replace("-", "_") for k in values}
    given = {k: v for k, v in vars(args).items() if k in config_fields(cls)}
    cfg = from_dict(cls, given, base=cfg, where="command line")
    cfg._given = frozenset(named | set(given))  # type: ignore[attr-defined]  # what --resume takes as changed
    return cfg
