"""Outputs that look like results but are not: a model that predicts one class everywhere, no boxes at all, or
the same answer for every image. Pure functions over what an evaluation counts anyway (predicted-class
counts, box counts, the spread of the outputs); each returns what is wrong in words, or None.

A segmentation model that learned nothing predicts the background for every pixel: its Dice is 0 and its
pixel accuracy exactly the background's share, numbers that read like a finished, bad run rather than a
failed one. The tasks warn with these during training (each epoch's validation) and write them into
``results.json`` (``"degenerate"``), with what to change.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def one_class(predicted: Tensor | Sequence[int], classes: Sequence[str], unit: str = "image",
              truth: Tensor | Sequence[int] | None = None) -> str | None:
    """``predicted``: how many ``unit``s were predicted as each class. Says so when every one went to one
    class although the truth (``truth``: the same counts for the labels, when known) holds more than one."""
    counts = torch.as_tensor(predicted, dtype=torch.float64).flatten()
    total = float(counts.sum())
    if total == 0 or int((counts > 0).sum()) != 1:
        return None
    k = int(counts.argmax())
    share = ""
    if truth is not None:
        t = torch.as_tensor(truth, dtype=torch.float64).flatten()
        if int((t > 0).sum()) < 2:  # one class in the truth too: predicting it is right
            return None
        share = f"; '{classes[k]}' is {float(t[k]) / float(t.sum()):.1%} of the truth, which is all its accuracy is"
    return (f"the model predicts '{classes[k]}' for every {unit} ({int(total):,} {unit}s){share}: it has learned "
            "nothing but the commonest answer")


def no_boxes(detections: int, images: int) -> str | None:
    """Says so when a detector found nothing in any of ``images`` images."""
    if images == 0 or detections > 0:
        return None
    return f"the model detected no box in any of the {images:,} images"


def constant_output(std: Tensor | float, images: int, tolerance: float = 1e-4) -> str | None:
    """``std``: the standard deviation over images of each output (a class's probability); says so when none
    varies by more than ``tolerance``: the model gives every image the same answer whatever it shows."""
    spread = float(torch.as_tensor(std).max()) if torch.as_tensor(std).numel() else 0.0
    if images < 2 or spread > tolerance:
        return None
    return (f"the model's output is the same for all {images:,} images (largest spread {spread:.1e}): it ignores "
            "its input")


class OutputSpread:
    """Running sums for :func:`constant_output`: the mean and standard deviation over images of each output,
    accumulated batch by batch in float64 (``update(probabilities (N, C))``)."""

    def __init__(self) -> None:
        self.n, self.s1, self.s2 = 0, None, None

    def update(self, outputs: Tensor) -> None:
        x = outputs.detach().to(torch.float64).reshape(len(outputs), -1)
        s1, s2 = x.sum(0), (x * x).sum(0)
        self.s1 = s1 if self.s1 is None else self.s1 + s1.to(self.s1.device)
        self.s2 = s2 if self.s2 is None else self.s2 + s2.to(self.s2.device)
        self.n += len(x)

    def std(self) -> Tensor:
        if self.s1 is None or self.n == 0:
            return torch.zeros(0, dtype=torch.float64)
        mean = self.s1 / self.n
        return (self.s2 / self.n - mean * mean).clamp_min(0).sqrt().cpu()


__all__ = ["one_class", "no_boxes", "constant_output", "OutputSpread"]
