"""The face every region-based detector shows, so training, evaluation and the CLI never branch on the kind.

A detector classifies regions: ``forward(images, regions)`` gives logits over ``num_classes + 1`` classes
(0 = background) and optional class-specific box deltas; ``predict_regions`` gives per-class probabilities
and boxes; ``detect`` adds the proposals and the post-processing. Where the regions come from is the
detector's ``proposal_method`` (:mod:`dcvkit.models.detect.proposals`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from dcvkit.models.detect.box_coder import decode
from dcvkit.models.detect.postprocess import Detections, PostProcess


class RegionDetector(nn.Module):
    """Base class. Subclasses set ``num_classes`` (object classes, background not counted), ``in_chans``,
    ``img_size`` and ``proposal_method``, and implement :meth:`forward`.

    Shape:
        images: (B, in_chans, H, W) float, normalised; regions: per image (n_i, 4) x1 y1 x2 y2 pixels.
        forward -> logits (K, num_classes + 1), deltas (K, num_classes, 4) or None; K = sum of n_i.
    """

    num_classes: int
    in_chans: int
    img_size: tuple[int, int]
    proposal_method: str = "selective_search"

    def forward(self, images: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def predict_regions(self, images: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Per region: class probabilities (K, num_classes) (background left out) and per-class boxes
        (K, num_classes, 4): the regions moved by the predicted deltas, or the regions themselves."""
        logits, deltas = self(images, regions)
        scores = logits.float().softmax(1)[:, 1:]
        flat = torch.cat(list(regions)).to(scores)
        if deltas is None:
            return scores, flat[:, None].expand(-1, self.num_classes, 4)
        return scores, decode(deltas.float(), flat[:, None])

    @torch.inference_mode()
    def detect(self, images: Tensor, regions: Sequence[Tensor], post: PostProcess = PostProcess()) -> list[Detections]:
        """Detections per image for normalised ``images`` and their proposals."""
        scores, boxes = self.predict_regions(images, regions)
        out, start = [], 0
        size = (images.shape[-2], images.shape[-1])
        for r in regions:
            n = len(r)
            out.append(post(boxes[start:start + n], scores[start:start + n], size))
            start += n
        return out


__all__ = ["RegionDetector"]
