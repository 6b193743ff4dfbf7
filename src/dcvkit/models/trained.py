"""A trained run's model, back from its checkpoint: rebuilt through the registry from the meta the task
saved (model name and builder kwargs), its weights loaded, in eval mode.

Checkpoints of another task, or of another program, are refused in one line naming the command that makes
the right ones. Every reader of runs goes through :func:`load_run_model` (the tasks' ``evaluate`` and
``predict``, ``dcv export``, the explanations, the FID judge), and :class:`~dcvkit.models.normalise.Normaliser`
``.from_meta(meta)`` gives the input normalisation that goes with it.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from dcvkit.errors import CheckpointError
from dcvkit.io import load_checkpoint
from dcvkit.models.registry import create_model


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
        known = isinstance(meta, dict) and "task" in meta
        kind = f"a {meta['task']} checkpoint" if known else "not a dcvkit checkpoint"
        raise CheckpointError(f"{weights}: {kind}; this needs a run of {train_command}")
    model = create_model(meta["model"], **meta["model_kwargs"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{weights}: weights do not fit model '{meta['model']}' ({str(e).splitlines()[0]})")
    if channels_last and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
    return model.to(resolve_device(device)).eval(), meta


__all__ = ["load_run_model"]
