"""The faces every detector shows, so training, evaluation and the CLI never branch on the kind.

:class:`Detector` is the contract of all six detectors: ``loss(images, boxes, labels, proposals)`` gives the
training loss and its parts, ``detect(images, proposals)`` gives post-processed detections. Where the
regions come from is ``proposal_method``: ``selective_search`` or ``sliding_window`` (computed outside the
network, :mod:`dcvkit.models.detect.proposals`), ``rpn`` (the network proposes them: Faster R-CNN) or
``none`` (no regions at all: YOLO's dense grid).

:class:`RegionDetector` is the region classifiers' face (sliding windows, R-CNN, Fast R-CNN, and Faster
R-CNN's second stage): ``forward(images, regions)`` gives logits over ``num_classes + 1`` classes
(0 = background) and optional class-specific box deltas, trained on regions sampled by
:class:`~dcvkit.models.detect.targets.RoISampler` with Fast R-CNN's multi-task loss.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import torch
from torch import Tensor, nn

from dcvkit.choices import PROPOSAL_METHODS
from dcvkit.models.detect.box_coder import decode
from dcvkit.models.detect.postprocess import Detections, PostProcess
from dcvkit.models.detect.targets import RoISampler

#: proposal methods computed outside the network (the task attaches their boxes to the data)
EXTERNAL_PROPOSALS = PROPOSAL_METHODS


class Detector(nn.Module):
    """Base class of every detector. Subclasses set ``num_classes`` (object classes, background not
    counted), ``in_chans`` and ``img_size``, and implement :meth:`loss` and :meth:`detect`.

    The class attributes are what the family says about itself. The detect task, ``dcv export`` and ``dcv
    bench detect`` read them from the class (``model_entry(name).model_class``) before any model is built, so
    a detector registered from outside the package trains, evaluates and exports with no edit to them:

    * ``kind``: ``crop`` (a CNN pass per region), ``region`` (RoI features of one pass) or ``grid`` (one pass,
      no regions);
    * ``proposal_method``: where regions come from (see the module docstring);
    * ``fixed_size``: takes ``img_size`` images only (dense layers over the whole image);
    * ``defaults``: the training options ``dcv detect train`` leaves to the detector (epochs, batch size,
      regions per image, mosaic probability, the metric to monitor);
    * ``export_outputs``: the names of :meth:`forward_export`'s outputs when the detector is one graph from
      pixels to boxes (``dcv export``); empty when it is not (proposals or RoI ops outside the network).

    Shape:
        images: (B, in_chans, H, W) float, normalised; boxes: per image (n_i, 4) x1 y1 x2 y2 pixels;
        labels: per image (n_i,) int64 in 0..num_classes-1; proposals: per image (m_i, 4), or None when
        ``proposal_method`` is ``rpn`` or ``none``.
    """

    num_classes: int
    in_chans: int
    img_size: tuple[int, int]
    kind: ClassVar[str] = "region"
    proposal_method: ClassVar[str] = "selective_search"
    fixed_size: ClassVar[bool] = False
    defaults: ClassVar[Mapping[str, Any]] = {"epochs": 16, "batch_size": 8, "rois_per_image": 64, "mosaic": 0.0,
                                             "affine": 0.0, "ema": 0.0,
                                             "monitor": "val_map50"}
    export_inputs: ClassVar[tuple[str, ...]] = ("images",)
    export_outputs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def takes_mosaic(cls) -> bool:
        """A mosaic moves and cuts objects: fine for detectors that find their own regions, not for ones
        trained on proposals computed beforehand from the untouched images."""
        return cls.proposal_method not in EXTERNAL_PROPOSALS

    def second_stage(self, data: Any, preprocess: Any, options: Mapping[str, Any], progress: bool = False
                     ) -> dict[str, Any] | None:
        """Training after the network's (R-CNN's SVMs on its features), on the training ``data``
        (:class:`~dcvkit.data.detection.DetectionTensors` with proposals) with the run's ``options``; returns
        what to add to the checkpoint's meta, or None when the family has no second stage."""
        return None

    def forward_export(self, images: Tensor) -> tuple[Tensor, ...]:
        """What ``dcv export`` puts in the graph (detectors with ``export_outputs``)."""
        raise NotImplementedError(f"{type(self).__name__} is not one graph from pixels to boxes")

    @property
    def needs_proposals(self) -> bool:
        return self.proposal_method in EXTERNAL_PROPOSALS

    def loss(self, images: Tensor, boxes: Sequence[Tensor], labels: Sequence[Tensor],
             proposals: Sequence[Tensor] | None = None, sampler: RoISampler = RoISampler(),
             box_weight: float = 1.0) -> dict[str, Tensor]:
        """``{"loss": total, ...parts}``: every value a scalar tensor; ``sampler`` and ``box_weight`` are
        the region heads' training settings (detectors without region heads ignore them)."""
        raise NotImplementedError

    def detect(self, images: Tensor, proposals: Sequence[Tensor] | None = None,
               post: PostProcess = PostProcess()) -> list[Detections]:
        """Detections per image (boxes in the pixels of ``images``), best first."""
        raise NotImplementedError


class RegionDetector(Detector):
    """A detector that classifies regions; subclasses implement :meth:`forward`.

    Shape:
        forward(images, regions) -> logits (K, num_classes + 1), deltas (K, num_classes, 4) or None;
        K = sum of n_i over the per-image regions (n_i, 4).
    """

    def forward(self, images: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def loss(self, images, boxes, labels, proposals=None, sampler=RoISampler(), box_weight=1.0):
        """Fast R-CNN's recipe: per image, regions sampled from the proposals and the ground truth,
        classified over the classes + background, box deltas regressed for the foreground ones."""
        assert proposals is not None, f"{type(self).__name__} trains on proposals"
        return self.region_loss(images, boxes, labels, proposals, sampler, box_weight)

    def region_loss(self, images, boxes, labels, proposals, sampler, box_weight, features: Tensor | None = None
                    ) -> dict[str, Tensor]:
        from dcvkit.losses.detection import fast_rcnn_loss

        rois, y, t = [], [], []
        for b, lab, p in zip(boxes, labels, proposals):
            r, yy, tt = sampler(p, b.float(), lab)
            rois.append(r)
            y.append(yy)
            t.append(tt)
        y_, t_ = torch.cat(y), torch.cat(t)
        logits, deltas = self(images, rois) if features is None else self.forward_rois(features, rois)
        loss, cls, box = fast_rcnn_loss(logits, deltas, y_, t_, box_weight)
        acc = (logits.detach().argmax(1) == y_).float().mean()
        return {"loss": loss, "cls_loss": cls.detach(), "box_loss": box.detach(), "acc": acc}

    def predict_regions(self, images: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Per region: class probabilities (K, num_classes) (background left out) and per-class boxes
        (K, num_classes, 4): the regions moved by the predicted deltas, or the regions themselves."""
        return self.scores_and_boxes(*self(images, regions), regions)

    def scores_and_boxes(self, logits: Tensor, deltas: Tensor | None, regions: Sequence[Tensor]
                         ) -> tuple[Tensor, Tensor]:
        scores = logits.float().softmax(1)[:, 1:]
        flat = torch.cat(list(regions)).to(scores)
        if deltas is None:
            return scores, flat[:, None].expand(-1, self.num_classes, 4)
        return scores, decode(deltas.float(), flat[:, None])

    @torch.inference_mode()
    def detect(self, images: Tensor, proposals: Sequence[Tensor] | None = None,
               post: PostProcess = PostProcess()) -> list[Detections]:
        """Detections per image for normalised ``images`` and their proposals."""
        assert proposals is not None, f"{type(self).__name__} detects in given proposals"
        scores, boxes = self.predict_regions(images, proposals)
        return split_post(boxes, scores, proposals, post, (images.shape[-2], images.shape[-1]))


def split_post(boxes: Tensor, scores: Tensor, regions: Sequence[Tensor], post: PostProcess,
               size: tuple[int, int]) -> list[Detections]:
    """Post-process the rows of ``boxes``/``scores`` image by image (``regions`` gives each image's count)."""
    out, start = [], 0
    for r in regions:
        n = len(r)
        out.append(post(boxes[start:start + n], scores[start:start + n], size))
        start += n
    return out


__all__ = ["Detector", "RegionDetector", "EXTERNAL_PROPOSALS", "split_post"]
