"""Pretrained weights for transfer learning: read them from a file or the local torch cache, fit them to a model.

A source is one of:

* a dcvkit run directory or checkpoint (its ``meta`` says which architecture, width and stem it is);
* a state-dict file from torchvision or timm (``{name: tensor}``, optionally under ``state_dict`` or
  ``model``; ``module.`` prefixes from DataParallel are stripped);
* a torchvision weights name (``ResNet18_Weights.IMAGENET1K_V1``, or ``resnet18`` for its default
  weights), read from the local torch hub cache (``~/.cache/torch/hub/checkpoints``); it is downloaded
  (hash-checked by torch.hub) only when the user passes ``--download``.

Every file is read with ``torch.load(..., weights_only=True)``. :func:`apply_pretrained` replaces the head
when the classes differ, adapts the first convolution between RGB and grayscale (summing or averaging its
input channels, as timm does), and refuses anything else that does not fit with an error naming the layers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dcvkit.errors import CheckpointError
from dcvkit.io import load_checkpoint

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@dataclass
class Pretrained:
    source: str
    state_dict: dict[str, Tensor]
    meta: dict[str, Any] | None = None  # a dcvkit checkpoint's meta (model, model_kwargs, classes, mean, std)
    mean: list[float] | None = None  # input normalisation the weights were trained with
    std: list[float] | None = None
    notes: list[str] = field(default_factory=list)


def _torchvision_file(name: str, download: bool) -> tuple[Path, Any]:
    import torchvision

    try:
        weights = (torchvision.models.get_weight(name) if "_Weights." in name
                   else torchvision.models.get_model_weights(name).DEFAULT)
    except (ValueError, KeyError, AttributeError):
        raise CheckpointError(f"{name}: no such file, and not a torchvision weights name "
                              "(e.g. ResNet18_Weights.IMAGENET1K_V1 or resnet18)") from None
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if not path.is_file():
        if not download:
            raise CheckpointError(f"{name}: not in the local torch cache ({path}); pass --download to fetch "
                                  f"{weights.url}, or give the path of a weights file")
        torch.hub.load_state_dict_from_url(weights.url, model_dir=str(path.parent), check_hash=True,
                                           map_location="cpu", weights_only=True)
    return path, weights


def read_pretrained(source: str | os.PathLike, download: bool = False) -> Pretrained:
    """Load the weights named by ``source`` (see the module docstring) on the CPU."""
    path = Path(source)
    if not path.exists():
        file, weights = _torchvision_file(str(source), download)
        sd = load_checkpoint(file, map_location="cpu")
        t = weights.transforms()
        return Pretrained(str(source), sd, mean=list(t.mean), std=list(t.std))
    ckpt = load_checkpoint(path, map_location="cpu")
    if isinstance(ckpt.get("meta"), dict) and isinstance(ckpt.get("model"), dict):
        meta = ckpt["meta"]
        if meta.get("task") == "classify":  # a dcvkit run: its meta is checked as every run reader checks it
            from dcvkit.models.trained import check_meta

            check_meta(meta, str(source), "classify", ckpt["model"])
        return Pretrained(str(source), ckpt["model"], meta, meta.get("mean"), meta.get("std"))
    for key in ("state_dict", "model"):
        if isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    sd = {k.removeprefix("module."): v for k, v in ckpt.items() if isinstance(v, Tensor)}
    if not sd:
        raise CheckpointError(f"{source}: holds no weights (expected a dcvkit checkpoint or a state dict)")
    return Pretrained(str(source), sd)


def _first_conv(model: nn.Module) -> str | None:
    return next((f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)


def apply_pretrained(model: nn.Module, pre: Pretrained, classes: list[str] | None = None) -> list[str]:
    """Load ``pre`` into ``model`` (which already has the new head); returns notes on what was adapted.

    The head is kept only when it fits and (for a dcvkit checkpoint) was trained on the same ``classes``.

    Raises:
        CheckpointError: naming the layers whose shapes differ, and the missing or unexpected ones.
    """
    target = model.state_dict()
    sd = dict(pre.state_dict)
    notes: list[str] = []
    head = getattr(model, "head_name", "fc")
    head_keys = [k for k in (f"{head}.weight", f"{head}.bias") if k in target]
    other_classes = classes is not None and pre.meta is not None and pre.meta.get("classes") != list(classes)
    if other_classes or any(k in sd and sd[k].shape != target[k].shape for k in head_keys):
        for k in head_keys:
            sd.pop(k, None)
        notes.append(f"new head '{head}' for {target[head_keys[0]].shape[0]} classes")
    first = _first_conv(model)
    if first and first in sd:
        src, dst = sd[first], target[first]
        if src.shape[1] != dst.shape[1] and src.shape[0] == dst.shape[0] and src.shape[2:] == dst.shape[2:]:
            if dst.shape[1] == 1:  # RGB filters on grayscale input: a gray pixel feeds all three
                sd[first] = src.sum(1, keepdim=True)
            else:
                sd[first] = src.mean(1, keepdim=True).repeat(1, dst.shape[1], 1, 1)
            notes.append(f"first conv '{first}' adapted from {src.shape[1]} to {dst.shape[1]} input channels")
    wrong = [k for k, v in target.items() if k in sd and sd[k].shape != v.shape]
    missing = [k for k in target if k not in sd and k not in head_keys]
    unexpected = [k for k in sd if k not in target]
    if wrong or missing or unexpected:
        name = getattr(model, "model_name", type(model).__name__)
        parts = []
        if wrong:
            shown = "; ".join(f"{k} {tuple(sd[k].shape)} in the file vs {tuple(target[k].shape)} in the model"
                              for k in wrong[:4])
            parts.append(f"{len(wrong)} layer(s) of another shape: {shown}" + (" ..." if len(wrong) > 4 else ""))
        if missing:
            parts.append(f"{len(missing)} missing: {', '.join(missing[:4])}" + (" ..." if len(missing) > 4 else ""))
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {', '.join(unexpected[:4])}"
                         + (" ..." if len(unexpected) > 4 else ""))
        hint = ""
        trained = (pre.meta or {}).get("model")
        if trained and trained != name:
            hint = f"; the file holds a '{trained}', use --model {trained}"
        elif first in wrong and sd[first].shape[2:] != target[first].shape[2:]:
            hint = "; the first conv's kernel differs: the file has the other stem, try --stem imagenet or --stem small"
        raise CheckpointError(f"{pre.source}: weights do not fit model '{name}': {'; '.join(parts)}{hint}")
    model.load_state_dict(sd, strict=False)
    return notes


def input_stats(pre: Pretrained, in_chans: int) -> tuple[list[float], list[float]] | None:
    """The normalisation the weights expect, for ``in_chans`` input channels (None if unknown)."""
    if pre.mean is None or pre.std is None:
        return None
    if len(pre.mean) == in_chans:
        return list(pre.mean), list(pre.std)
    mean, std = sum(pre.mean) / len(pre.mean), sum(pre.std) / len(pre.std)
    return [mean] * in_chans, [std] * in_chans
