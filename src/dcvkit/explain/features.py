"""Feature maps (what each channel of a layer responds to in one image) and first-layer filters."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from dcvkit.errors import ConfigError
from dcvkit.explain.model import Explainable


def layer_names(model: nn.Module) -> list[tuple[str, str, str]]:
    """(name, type, role) of every named submodule: role says whether it is one of the model's
    ``feature_layers`` (the default maps)."""
    default = set(getattr(model, "feature_layers", []))
    return [(n, type(m).__name__, "feature layer" if n in default else "")
            for n, m in model.named_modules() if n]


def feature_maps(ex: Explainable, image: Tensor, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
    """The output (C', h, w) of each named layer (default: the model's ``feature_layers``) for ``image``
    (C, H, W) in [0, 1]; an unknown name is an error listing the valid ones."""
    model = ex.model.eval()
    names = list(layers or getattr(model, "feature_layers", []))
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules or not n]
    if unknown:
        valid = ", ".join(n for n, _, _ in layer_names(model))
        raise ConfigError(f"--layers: unknown layer(s) {', '.join(unknown)}; valid layers: {valid} "
                          "(dcv explain features RUN --list-layers)")
    store: dict[str, Tensor] = {}
    hooks = [modules[n].register_forward_hook(lambda _m, _i, o, n=n: store.__setitem__(n, o.detach().clone()))
             for n in names]
    try:
        with torch.inference_mode():
            ex.logits(image.to(device=ex.device, dtype=ex.dtype).unsqueeze(0))
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for n in names:
        a = store[n][0].float().cpu()
        if a.ndim != 3:
            raise ConfigError(f"--layers {n}: its output has shape {tuple(store[n].shape)}, not a feature map "
                              "(B, C, h, w); choose a convolutional layer or block")
        out[n] = a
    return out


def first_layer_filters(model: nn.Module) -> tuple[str, Tensor]:
    """The first convolution's name and weights (out, in, kh, kw)."""
    for n, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return n, m.weight.detach().float().cpu()
    raise ConfigError("this model has no convolutional layer, so no filters to show")
