"""What many ``dcv`` commands take, defined once: a run's weights, image files, ``--device``, ``--split``,
``--out``, ``--seed`` and the run-directory options, and the ``train`` mode every task shares.

The options that are also config fields (``--device``, ``--seed``, ``--project``, ``--name``) take their help
and choices from that field, so a flag reads the same on every command. Paths are checked while the command
line is parsed: a missing file is a one-line usage error before anything heavy (torch) is imported.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable

from dcvkit.config import RunConfig, TrainConfig, add_config_arguments, check_value, field_meta, resolve
from dcvkit.errors import ConfigError
from dcvkit.tasks import TaskSpec

RAW = argparse.RawDescriptionHelpFormatter


def existing(kind: str = "file or folder") -> Callable[[str], str]:
    """An argparse ``type``: the path must exist (argparse then reports the argument, the path and why)."""

    def check(path: str) -> str:
        if not os.path.exists(path):
            raise argparse.ArgumentTypeError(f"{path}: no such {kind}")
        return path

    return check


def add_field(parser: argparse.ArgumentParser, cls: type, name: str, **kwargs: Any) -> None:
    """``--<name>`` as the config field ``cls.name`` defines it (help, choices, default), for commands that
    are not a config (val, predict, latent tools...)."""
    meta = field_meta(cls, name)
    default = kwargs.pop("default", cls.__dataclass_fields__[name].default)
    kw: dict[str, Any] = {"default": default, "help": f"{meta.get('help', '')} (default: {default})"}
    if meta.get("choices"):
        kw["choices"] = meta["choices"]
    elif meta.get("bounds") or meta.get("check"):  # the field's own declaration, as for a config's flags
        kw["type"] = _declared(cls, name, int if isinstance(default, int) and not isinstance(default, bool) else str)
    elif isinstance(default, int) and not isinstance(default, bool):
        kw["type"] = int
    parser.add_argument("--" + name.replace("_", "-"), **{**kw, **kwargs})


def _declared(cls: type, name: str, convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` that converts and then checks the value as the config field declares it."""

    def check(raw: str) -> Any:
        try:
            value = convert(raw)
            check_value(cls, name, value, "command line")
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {convert.__name__}, got {raw!r}") from None
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None
        return value

    check.__name__ = convert.__name__  # argparse names the type in its message
    return check


def add_weights(parser: argparse.ArgumentParser, what: str = "run directory or checkpoint (.pt)") -> None:
    parser.add_argument("weights", metavar="RUN_OR_CKPT", type=existing("checkpoint or run directory"), help=what)


def add_images(parser: argparse.ArgumentParser, nargs: str = "+", what: str = "image files") -> None:
    parser.add_argument("images", nargs=nargs, metavar="IMAGE", type=existing("image file"), help=what)


def add_device(parser: argparse.ArgumentParser) -> None:
    add_field(parser, TrainConfig, "device")


def add_seed(parser: argparse.ArgumentParser) -> None:
    add_field(parser, RunConfig, "seed")


def add_run_dir(parser: argparse.ArgumentParser) -> None:
    """``--project`` and ``--name``: where a command that writes a run directory writes it."""
    add_field(parser, RunConfig, "project")
    add_field(parser, RunConfig, "name")


def add_split(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", default="test", choices=("test", "val", "train"),
                        help="which split of the run's data (default: test)")


def add_out(parser: argparse.ArgumentParser, what: str, default: str | None = None) -> None:
    note = f" (default: {default})" if default else ""
    parser.add_argument("--out", default=default, metavar="DIR", help=what + note)


def add_train(modes: argparse._SubParsersAction, task: TaskSpec, help: str, description: str,
              report: Callable[[Any], None]) -> argparse.ArgumentParser:
    """``dcv <task> train``: one flag per field of the task's config (and ``--config FILE.yaml``); the run's
    outcome is printed by ``report(result)`` (the task's own summary line)."""
    t = modes.add_parser("train", help=help, formatter_class=RAW, description=description)
    add_config_arguments(t, task.config)
    t.set_defaults(func=cmd_train, task=task.name, report=report)
    return t


def cmd_train(args: argparse.Namespace) -> int:
    """Every task's train command: the config (resolved and checked before torch is imported), in several
    processes when ``--devices``/``--num-nodes`` ask for them, else here; then the task's report."""
    from dcvkit.cli.launch import launched
    from dcvkit.tasks import get_task

    task = get_task(args.task)
    cfg = train_config(args, task)
    if (code := launched(cfg, args)) is not None:
        return code
    args.report(task.train(cfg))
    return 0


def train_config(args: argparse.Namespace, task: TaskSpec) -> Any:
    """The config the command line asks for: defaults < ``--config`` YAML < flags, checked (a missing
    ``--config`` or ``--resume`` is a one-line error) before the task's module, and torch, is imported."""
    cfg = resolve(task.config, args)
    if getattr(cfg, "resume", None) and not os.path.exists(cfg.resume):
        raise ConfigError(f"--resume {cfg.resume}: no such run directory or checkpoint")
    return cfg


def add_evaluation(parser: argparse.ArgumentParser, out: str, data: str | None = None) -> None:
    """What every ``val``/``eval`` mode takes: the run, the data to score on (``data``: its help; None: the
    run's own only), the split, the device, the folder for the results."""
    add_weights(parser)
    if data is not None:
        parser.add_argument("--data", help=data)
    add_split(parser)
    add_device(parser)
    add_out(parser, out)


def fit_line(result: Any) -> str:
    """``done: 12 epochs in 340s; best val_acc 0.9132 (epoch 11)`` for a task's :class:`TrainResult`."""
    fit = result.fit
    line = f"done: {fit.epochs_run} epochs in {fit.seconds:.0f}s"
    if fit.best is not None:
        line += f"; best {result.config.monitor} {fit.best:.4f} (epoch {fit.best_epoch})"
    if getattr(fit, "best_note", None):
        line += f"; warning: at that epoch {fit.best_note}"
    return line


__all__ = ["RAW", "existing", "add_field", "add_weights", "add_images", "add_device", "add_seed", "add_run_dir",
           "add_split", "add_out", "add_train", "cmd_train", "train_config", "add_evaluation", "fit_line"]
