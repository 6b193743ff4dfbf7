"""The course's perturbation saliency, literally: one pixel value at a time, one forward pass per change.

Kept as the reference the tests compare the fast engines with, and as the baseline ``dcv bench saliency``
times. Do not use it for real images: a 224x224 RGB image with 4 steps is 602,112 forward passes.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from dcvkit.explain.model import Explainable


def naive_perturbation_saliency(ex: Explainable, x: Tensor, target: int, deltas: Sequence[float],
                                values: Sequence[int] | None = None, score: str = "logprob") -> Tensor:
    """Saliency (C, H, W) of class ``target`` for image ``x`` (C, H, W) in [0, 1].

    ``deltas`` are signed steps in pixel units (e.g. ``[-2/255, -1/255, 1/255, 2/255]``). ``values``
    restricts the loop to those flat pixel-value indices (the rest stay 0), for timing on big images.
    """
    x = x.to(device=ex.device, dtype=ex.dtype)
    saliency = torch.zeros_like(x)
    flat_saliency = saliency.view(-1)
    with torch.inference_mode():
        p_original = float(ex.score(x[None], target, score)[0])
        for i in (range(x.numel()) if values is None else values):   # R, G, B, then the next pixel
            ds = []
            for delta in deltas:
                copy = x.clone()                                      # a copy before changing anything
                flat = copy.view(-1)
                original = float(flat[i])
                flat[i] = min(1.0, max(0.0, original + delta))        # stay a valid pixel value
                step = float(flat[i]) - original
                if step == 0:
                    continue                                          # clipped away: no change to measure
                p_changed = float(ex.score(copy[None], target, score)[0])
                ds.append((p_changed - p_original) / step)            # D = delta probability / delta pixel
            flat_saliency[i] = sum(ds) / len(ds) if ds else 0.0
    return saliency
