"""What every scene-graph model shares, so training, evaluation and the CLI never branch on the model.

The face:

* ``loss(images, boxes, labels, relations) -> {"loss": total, "obj_loss", "rel_loss"}``: the objects'
  classes from their RoI features (what SGCls needs) and the predicate of every ordered pair of true objects
  (background: no relation), per image boxes (n, 4), labels (n,), relations (m, 3) subject, object, predicate;
* ``predict(images, boxes, labels=None, scores=None) -> [GraphOutput]``: given boxes (and classes, PredCls;
  a detector's classes and scores, SGDet), every ordered pair's predicate probabilities;
* ``set_prior(counts)``: Neural Motifs' ``FrequencyBias``, log p(predicate | subject class, object class)
  from the training set's counts (background included), added to every model's predicate logits;
* ``sees``: what the relation head looks at (``classes``, ``boxes``, ``pixels``), for the tables.

Data flow (128 x 128 input, widths scale with ``width``)::

    image (N, 3, 128, 128) -> conv s2 24 -> conv s2 48 -> conv 64 -> conv 64 = features (N, 64, 32, 32)
    objects: RoI Align 7 x 7 of each box -> 2 dense 256 = object features -> class logits
    pairs (P of them): the model's relation head -> (P, R + 1) logits + the frequency bias of the pair's classes
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align

from dcvkit.models.detect.yolo import ConvBNAct

#: Laplace smoothing of the frequency bias (a pair of classes never seen together gets a flat prior)
PRIOR_SMOOTHING = 1.0


@dataclass
class GraphOutput:
    """One image's graph: objects (boxes (k, 4), labels (k,), scores (k,)), every ordered pair (P, 2) and its
    predicate probabilities (P, R), background excluded (the rows need not sum to 1)."""

    boxes: Tensor
    labels: Tensor
    scores: Tensor
    pairs: Tensor
    predicate_scores: Tensor


def all_pairs(n: int, device: torch.device | str = "cpu") -> Tensor:
    """(n (n - 1), 2) every ordered pair of ``n`` objects, subject-major."""
    idx = torch.arange(n, device=device)
    s, o = torch.meshgrid(idx, idx, indexing="ij")
    keep = s != o
    return torch.stack([s[keep], o[keep]], 1)


def pair_geometry(boxes: Tensor, pairs: Tensor, size: tuple[int, int]) -> Tensor:
    """(P, 16) what two boxes say about each other: both boxes in image units, the object's offset and log
    size relative to the subject's, IoU, the share of each box the other covers, the signed gaps."""
    h, w = size
    scale = boxes.new_tensor([w, h, w, h])
    bs, bo = boxes[pairs[:, 0]], boxes[pairs[:, 1]]
    ws, hs = (bs[:, 2] - bs[:, 0]).clamp_min(1), (bs[:, 3] - bs[:, 1]).clamp_min(1)
    wo, ho = (bo[:, 2] - bo[:, 0]).clamp_min(1), (bo[:, 3] - bo[:, 1]).clamp_min(1)
    dx = ((bo[:, 0] + bo[:, 2]) - (bs[:, 0] + bs[:, 2])) / 2 / ws
    dy = ((bo[:, 1] + bo[:, 3]) - (bs[:, 1] + bs[:, 3])) / 2 / hs
    iw = (torch.minimum(bs[:, 2], bo[:, 2]) - torch.maximum(bs[:, 0], bo[:, 0]))
    ih = (torch.minimum(bs[:, 3], bo[:, 3]) - torch.maximum(bs[:, 1], bo[:, 1]))
    inter = iw.clamp_min(0) * ih.clamp_min(0)
    iou = inter / (ws * hs + wo * ho - inter)
    return torch.cat([bs / scale, bo / scale, torch.stack([dx, dy, (wo / ws).log(), (ho / hs).log(), iou,
                      inter / (ws * hs), inter / (wo * ho), iw / w], 1)], 1)


def _widths(width: float) -> tuple[int, ...]:
    return tuple(max(8, int(round(c * width / 8)) * 8) for c in (24, 48, 64, 64))


class SceneGraphModel(nn.Module):
    """The shared part: a stride-4 backbone of the project's conv blocks, the object classifier on RoI Align
    features, the frequency bias, the training loss and the prediction. Subclasses write
    :meth:`relation_logits`."""

    sees = ("classes",)
    stride = 4

    def __init__(self, *, num_classes: int = 10, num_predicates: int = 11, in_chans: int = 3,
                 img_size: int | Sequence[int] = 128, width: float = 1.0, roi_size: int = 7, hidden: int = 256):
        super().__init__()
        a, b, c, d = _widths(width)
        self.backbone = nn.Sequential(ConvBNAct(in_chans, a, 3, 2), ConvBNAct(a, b, 3, 2), ConvBNAct(b, c, 3, 1),
                                      ConvBNAct(c, d, 3, 1))
        self.channels, self.roi_size, self.hidden = d, roi_size, hidden
        self.object_head = nn.Sequential(nn.Flatten(), nn.Linear(d * roi_size * roi_size, hidden),
                                         nn.ReLU(inplace=True), nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(hidden, num_classes)
        self.num_classes, self.num_predicates = num_classes, num_predicates
        self.img_size = tuple(img_size) if isinstance(img_size, Sequence) else (img_size, img_size)
        self.register_buffer("log_prior", torch.zeros(num_classes, num_classes, num_predicates + 1))
        self.register_buffer("counts", torch.zeros(num_classes, num_classes, num_predicates + 1))

    def set_prior(self, counts: Tensor) -> None:
        """``counts`` (C, C, R + 1): training pairs per (subject class, object class, predicate), column 0 the
        pairs without a relation."""
        counts = counts.to(self.counts)
        self.counts.copy_(counts)
        p = (counts + PRIOR_SMOOTHING) / (counts + PRIOR_SMOOTHING).sum(-1, keepdim=True)
        self.log_prior.copy_(p.log())

    def features(self, images: Tensor) -> Tensor:
        return self.backbone(images)

    def roi(self, features: Tensor, boxes: Sequence[Tensor], size: int | None = None) -> Tensor:
        """(sum n_i, C, size, size) RoI Align of each image's boxes (image pixels)."""
        s = size or self.roi_size
        return roi_align(features, [b.to(features) for b in boxes], (s, s), 1 / self.stride, 2, aligned=True)

    def object_features(self, features: Tensor, boxes: Sequence[Tensor]) -> Tensor:
        return self.object_head(self.roi(features, boxes))

    def relation_logits(self, features: Tensor, image: int, boxes: Tensor, labels: Tensor, objects: Tensor,
                        pairs: Tensor, pixels: Tensor) -> Tensor:
        """(P, R + 1) predicate logits of one image's ``pairs`` (without the frequency bias); ``image`` indexes
        the image in ``features``, ``objects`` are its objects' features, ``pixels`` (1, C, H, W) the image
        itself (the network's input)."""
        raise NotImplementedError

    def _pair_logits(self, images: Tensor, features: Tensor, boxes: Sequence[Tensor], labels: Sequence[Tensor],
                     objects: Tensor, pairs: Sequence[Tensor]) -> list[Tensor]:
        out, start = [], 0
        for i, (b, lab, pr) in enumerate(zip(boxes, labels, pairs)):
            obj = objects[start:start + len(b)]
            start += len(b)
            if len(pr) == 0:
                out.append(objects.new_zeros(0, self.num_predicates + 1))
                continue
            logits = self.relation_logits(features, i, b.to(objects), lab, obj, pr, images[i:i + 1])
            out.append(logits + self.log_prior[lab[pr[:, 0]], lab[pr[:, 1]]])
        return out

    def loss(self, images: Tensor, boxes: Sequence[Tensor], labels: Sequence[Tensor],
             relations: Sequence[Tensor]) -> dict[str, Tensor]:
        dev = images.device
        boxes = [b.to(dev) for b in boxes]
        labels = [lab.to(dev) for lab in labels]
        features = self.features(images)
        objects = self.object_features(features, boxes)
        obj_loss = F.cross_entropy(self.classifier(objects), torch.cat(labels)) if len(objects) else images.sum() * 0
        pairs, targets = [], []
        for b, rel in zip(boxes, relations):
            pr = all_pairs(len(b), dev)
            t = torch.zeros(len(b), len(b), dtype=torch.long, device=dev)
            if len(rel):
                rel = rel.to(dev)
                t[rel[:, 0], rel[:, 1]] = rel[:, 2] + 1
            pairs.append(pr)
            targets.append(t[pr[:, 0], pr[:, 1]])
        logits = torch.cat(self._pair_logits(images, features, boxes, labels, objects, pairs))
        rel_loss = F.cross_entropy(logits, torch.cat(targets)) if len(logits) else obj_loss * 0
        return {"loss": obj_loss + rel_loss, "obj_loss": obj_loss.detach(), "rel_loss": rel_loss.detach()}

    @torch.inference_mode()
    def predict(self, images: Tensor, boxes: Sequence[Tensor], labels: Sequence[Tensor] | None = None,
                scores: Sequence[Tensor] | None = None) -> list[GraphOutput]:
        """Every ordered pair's predicate probabilities for the given boxes; without ``labels`` the objects'
        classes are the classifier's (SGCls), scored by its probability; with them (PredCls, or a detector's,
        SGDet) they are kept, scored ``scores`` (default 1)."""
        dev = images.device
        boxes = [b.to(dev).float() for b in boxes]
        features = self.features(images)
        objects = self.object_features(features, boxes)
        if labels is None:
            prob = self.classifier(objects).softmax(-1) if len(objects) else objects.new_zeros(0, self.num_classes)
            s, lab = prob.max(-1)
            labels = list(lab.split([len(b) for b in boxes]))
            scores = list(s.split([len(b) for b in boxes]))
        else:
            labels = [lab.to(dev).long() for lab in labels]
            scores = [torch.ones(len(b), device=dev) for b in boxes] if scores is None else [s.to(dev) for s in scores]
        pairs = [all_pairs(len(b), dev) for b in boxes]
        logits = self._pair_logits(images, features, boxes, labels, objects, pairs)
        return [GraphOutput(b, lab, s, pr, lg.softmax(-1)[:, 1:])
                for b, lab, s, pr, lg in zip(boxes, labels, scores, pairs, logits)]


#: the training options a scene-graph model may leave to itself, and their values when it names none
DEFAULTS = {"epochs": 12, "batch_size": 32}

__all__ = ["SceneGraphModel", "GraphOutput", "all_pairs", "pair_geometry", "DEFAULTS", "PRIOR_SMOOTHING"]
