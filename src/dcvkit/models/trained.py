"""A trained run's model, back from its checkpoint: rebuilt through the registry from the meta the task
saved (model name and builder kwargs), its weights loaded, in eval mode.

Checkpoints of another task, or of another program, are refused in one line naming the command that makes
the right ones. Every reader of runs goes through :func:`load_run_model` (the tasks' ``evaluate`` and
``predict``, ``dcv export``, the explanations, the FID judge), and :class:`~dcvkit.models.normalise.Normaliser`
``.from_meta(meta)`` gives the input normalisation that goes with it.

A checkpoint is a file from anywhere, so nothing in it is trusted before :func:`check_meta` has read it: the
meta's types and ranges (each option the task's config also has is checked by that field's declaration), the
model built first on the ``meta`` device (no memory) so that its shapes are compared with the file's tensors
before a byte is allocated, and every weight finite.
"""

from __future__ import annotations

import math
import os
import typing
from typing import Any, Mapping

from torch import nn

from dcvkit.choices import PROPOSAL_METHODS
from dcvkit.config import CHANNELS, IMAGE_SIDE, Bounds, _coerce, check_value, config_fields
from dcvkit.errors import CheckpointError, DcvError
from dcvkit.io import load_checkpoint
from dcvkit.models.registry import create_model, model_entry

#: the builder options that come from the data, not from a config field, and what they may be
DATA_KWARGS: dict[str, Bounds] = {"num_classes": Bounds(1, 10_000), "in_chans": Bounds(1, 4), "img_size": IMAGE_SIDE,
                                  "d_width": CHANNELS, "decoder_channels": CHANNELS}
MAX_CLASSES = 10_000


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, str)) or (isinstance(value, float) and math.isfinite(value))


def check_meta(meta: Any, where: str, task: str, state: Any = None) -> dict[str, Any]:
    """``meta`` (a checkpoint's) checked field by field for a ``task`` run; ``state``: the weights it goes
    with, compared in shape with the model the meta describes (built without memory). Returns ``meta``."""
    from dcvkit.tasks import TASKS

    spec = next(t for t in TASKS.values() if t.meta_task == task)
    fields, hints = config_fields(spec.config), typing.get_type_hints(spec.config)

    def bad(name: str, what: str) -> CheckpointError:
        return CheckpointError(f"{where}: meta '{name}' {what}; the checkpoint is damaged or not one dcvkit wrote "
                               "(use the run's own best.pt, or train again)")

    def declared(name: str, value: Any, key: str) -> Any:
        """A value the task's config also has: that field's type and declaration."""
        try:
            value = _coerce(name, value, hints[name], where)
            check_value(spec.config, name, value, where)
        except DcvError as e:
            raise bad(key, str(e).split(": ", 1)[-1]) from None
        return value

    name = meta.get("model")
    if not isinstance(name, str):
        raise bad("model", f"must be a model name, got {type(name).__name__}")
    try:
        entry = model_entry(name)
    except DcvError:
        raise bad("model", f"{name[:60]!r} is not a registered model") from None
    if entry.task != spec.family:
        raise bad("model", f"{name!r} is a {entry.task} model, not a {spec.family} one")
    kwargs = meta.get("model_kwargs")
    if not isinstance(kwargs, dict):
        raise bad("model_kwargs", f"must be a mapping of {name}'s options, got {type(kwargs).__name__}")
    for key, value in kwargs.items():
        label = f"model_kwargs.{key}"
        if key not in entry.options:
            raise bad(label, f"is not an option of {name} (its options: {', '.join(entry.options)})")
        values = value if isinstance(value, (list, tuple)) else [value]
        if len(values) > 16 or not all(_scalar(v) for v in values):
            raise bad(label, f"must be a number, a name or a short list of them, got {str(value)[:60]}")
        if key in DATA_KWARGS:
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int) or v not in DATA_KWARGS[key]:
                    raise bad(label, f"must be a whole number {DATA_KWARGS[key]}, got {v!r}")
        elif key in fields and not isinstance(value, (list, tuple)):
            declared(key, value, label)
    classes = meta.get("classes")
    if (not isinstance(classes, list) or not 1 <= len(classes) <= MAX_CLASSES
            or not all(isinstance(c, str) for c in classes)):
        raise bad("classes", f"must be a list of 1 to {MAX_CLASSES} class names")
    if "mean" in meta or "std" in meta:
        mean, std = meta.get("mean"), meta.get("std")
        for key, stats in (("mean", mean), ("std", std)):
            if (not isinstance(stats, list) or not 1 <= len(stats) <= 4 or isinstance(stats, str)
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                               for v in stats)):
                raise bad(key, "must be a list of 1 to 4 finite numbers, one per channel")
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise bad("std", "must give one positive number per channel of mean")
    if task != "segment" and kwargs.get("num_classes", len(classes)) != len(classes):
        raise bad("classes", f"names {len(classes)} classes but the model has {kwargs['num_classes']} outputs")
    if "mean" in meta and kwargs.get("in_chans", len(meta["mean"])) != len(meta["mean"]):
        raise bad("mean", f"has {len(meta['mean'])} channels but the model takes {kwargs['in_chans']}")
    if "augment" in meta and not isinstance(meta["augment"], dict):
        raise bad("augment", "must be the augmentation's state (a mapping)")
    for key in ("target", "crop", "reconstruction"):
        if key in meta and key in fields:
            declared(key, meta[key], key)
    if "img_size" in meta:
        size = meta["img_size"]
        if (not isinstance(size, list) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v in IMAGE_SIDE for v in size)):
            raise bad("img_size", f"must be [height, width], each {IMAGE_SIDE}")
    for group in ("post", "proposals"):
        if group in meta:
            if not isinstance(meta[group], dict):
                raise bad(group, "must be a mapping")
            for key, value in meta[group].items():
                if key in fields:
                    declared(key, value, f"{group}.{key}")
                elif key == "min_size" and group == "post":  # PostProcess's own, no flag
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1e4:
                        raise bad("post.min_size", f"must be a size in pixels, 0 to 10000, got {value!r}")
                elif key == "method" and group == "proposals":  # the model's own regions, or one computed
                    own = getattr(entry.model_class, "proposal_method", None)
                    allowed = PROPOSAL_METHODS if own in PROPOSAL_METHODS else (own,)
                    if value not in allowed:
                        raise bad("proposals.method", f"must be {' or '.join(map(str, allowed))} for {name}, "
                                                      f"got {str(value)[:40]!r}")
                else:
                    raise bad(f"{group}.{key}", "is not a setting dcvkit saves")
    if state is not None:
        _check_shapes(name, kwargs, state, where)
    return meta


def _check_shapes(name: str, kwargs: Mapping[str, Any], state: Any, where: str) -> None:
    """The model of the meta, built on the ``meta`` device (shapes, no memory), against the file's tensors:
    an option that would allocate more than the weights hold is refused before anything is allocated, and
    every weight must be finite."""
    import torch

    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{where}: 'model' must map parameter names to tensors")
    try:
        with torch.device("meta"):
            skeleton = create_model(name, **kwargs)
    except DcvError as e:
        raise CheckpointError(f"{where}: meta model_kwargs do not build {name} ({e})") from None
    except Exception as e:  # the builder's own complaint about a combination of options
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise CheckpointError(f"{where}: meta model_kwargs do not build {name} ({first})") from None
    expected = skeleton.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        what = f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(extra[:3])}"
        raise CheckpointError(f"{where}: weights do not fit model '{name}' ({what}); the checkpoint does not "
                              "match its own meta")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{where}: weights do not fit model '{name}' ({key} is "
                                  f"{tuple(state[key].shape)}, the meta's model has {tuple(tensor.shape)})")
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{where}: weight {key} holds NaN or infinite values; this checkpoint cannot "
                                  "predict anything (train again, or use an earlier checkpoint)")


def load_run_model(weights: str | os.PathLike, task: str, train_command: str, device: str = "cpu",
                   ckpt: dict[str, Any] | None = None, channels_last: bool = False
                   ) -> tuple[nn.Module, dict[str, Any]]:
    """The model of a ``task`` checkpoint (eval mode, on ``device``) and its meta, from a run directory or a
    .pt file (``ckpt``: its contents when the caller has loaded them). ``channels_last``: convolution
    weights in channels-last memory, as in training (2-4x faster convolutions on a CPU)."""
    import torch

    from dcvkit.engine.runtime import resolve_device

    ckpt = ckpt if ckpt is not None else load_checkpoint(weights, map_location="cpu")
    meta = ckpt.get("meta")
    if not isinstance(meta, dict) or meta.get("task") != task:
        known = isinstance(meta, dict) and isinstance(meta.get("task"), str)
        kind = f"a {meta['task'][:40]} checkpoint" if known else "not a dcvkit checkpoint"
        raise CheckpointError(f"{weights}: {kind}; this needs a run of {train_command}")
    check_meta(meta, str(weights), task, ckpt.get("model"))
    model = create_model(meta["model"], **meta["model_kwargs"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{weights}: weights do not fit model '{meta['model']}' ({str(e).splitlines()[0]})")
    if channels_last and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
    return model.to(resolve_device(device)).eval(), meta


__all__ = ["load_run_model", "check_meta"]
