"""Appearance embeddings from a detector's own features, captured by hooks while it detects (no second
forward pass) and RoI-aligned over each detected box (torchvision's ``roi_align``):

* the **last** feature map (the one the head reads: the YOLOs' ``head`` convolution's input, else the
  ``backbone``'s output), pooled into a 2x2 grid: what the object is and its layout;
* the **first** convolution's output (stride 2 or so), pooled the same way: colour and texture, which tell
  two items of one class apart where the last map, trained to classify, sees the same class.

Each part is centred and L2-normalised, and the two are concatenated (unit length overall), so either part
weighs the same in the cosine distance the appearance tracker compares them by.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align


def _feature_modules(model: nn.Module) -> list[tuple[nn.Module, bool]]:
    """The modules whose input (True) or output (False) are the first and the last feature maps."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    head = getattr(model, "head", None)
    if isinstance(head, nn.Conv2d):
        last = (head, True)
    elif isinstance(getattr(model, "backbone", None), nn.Module):
        last = (model.backbone, False)
    else:
        raise ValueError(f"{type(model).__name__}: no head convolution or backbone to take appearance features from")
    return ([(first, False)] if first is not None and first is not last[0] else []) + [last]


class DetectorFeatures:
    """``with DetectorFeatures(model) as f: model.detect(...); f.embed(boxes, image_width)``: the last
    forward's feature maps, pooled over boxes given in the network input's pixels."""

    def __init__(self, model: nn.Module, grid: int = 2, inner: float = 0.5):
        self.modules = _feature_modules(model)
        self.grid, self.inner = grid, inner
        self.features: list[Tensor | None] = [None] * len(self.modules)
        self._handles: list = []

    def _keep(self, k: int, x) -> None:
        self.features[k] = (x[0] if isinstance(x, (tuple, list)) else x).detach()

    def __enter__(self) -> "DetectorFeatures":
        for k, (module, take_input) in enumerate(self.modules):
            if take_input:
                self._handles.append(module.register_forward_pre_hook(lambda m, a, k=k: self._keep(k, a[0])))
            else:
                self._handles.append(module.register_forward_hook(lambda m, a, o, k=k: self._keep(k, o)))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def embed(self, boxes: Tensor, image_width: int) -> Tensor:
        """(n, d) unit vectors for ``boxes`` (n, 4) x1 y1 x2 y2 in the network input's pixels (first image)."""
        if any(f is None for f in self.features):
            raise RuntimeError("no features captured: run the detector inside the with block")
        parts = []
        boxes = boxes.float()
        centre, half = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) / 2
        inner = torch.cat([centre - self.inner * half, centre + self.inner * half], 1)
        for k, f in enumerate(self.features):
            f = f[:1].float().contiguous()  # type: ignore[index]
            if len(boxes) == 0:
                parts.append(torch.zeros(0, f.shape[1] * self.grid ** 2))
                continue
            b = inner if k < len(self.features) - 1 else boxes  # early maps: the box's centre, less background
            pooled = roi_align(f, [b.to(f.device)], output_size=self.grid,
                               spatial_scale=f.shape[-1] / image_width, sampling_ratio=2, aligned=True)
            v = pooled.flatten(1)
            v = v - v.mean(1, keepdim=True)
            parts.append(torch.nn.functional.normalize(v, dim=1).cpu())
        return torch.cat(parts, 1) / len(parts) ** 0.5


__all__ = ["DetectorFeatures"]
