"""Multi-scale YOLO for real image sizes: ``yolo_n`` and ``yolo_s`` (YOLOv8's layout, sized by width and depth
multipliers), anchor-free on three grids (strides 8, 16, 32) fed by a PAN neck, trained with a task-aligned
assignment (TOOD / YOLOv8) and the IoU-aware loss of ``yolo``.

Data flow (``yolo_n``: widths 16-256, depths 1-2-2-1; a 640x480 image)::

    image (N, 3, 480, 640) -> conv s2 16 -> conv s2 32, C2f -> conv s2 64, C2f x2 = C3 (N, 64, 60, 80)
      C3 -> conv s2 128, C2f x2 = C4 (N, 128, 30, 40) -> conv s2 256, C2f, SPPF = C5 (N, 256, 15, 20)
    PAN neck: top-down  [up(C5), C4] -> C2f = N4;  [up(N4), C3] -> C2f = P3 (stride 8)
              bottom-up [conv s2 (P3), N4] -> C2f = P4 (stride 16);  [conv s2 (P4), C5] -> C2f = P5 (stride 32)
    head per level (decoupled): box branch 2 x 3x3 -> 4 log-distances + objectness; class branch 2 x 3x3 -> C

  Every cell predicts distances (left, top, right, bottom) from its centre, ``exp(t) * stride`` (so each level
  starts at its own scale: 4 strides wide), an objectness and C class logits; score = sigmoid(obj) *
  sigmoid(cls). The three levels' cells are concatenated: (N, K, 5 + C), K = HW/64 + HW/256 + HW/1024.

Assignment (:func:`~dcvkit.models.detect.targets.task_aligned_assign`): for each object the ``topk`` cells, over
all levels, whose centres lie in its box and whose predictions align best with it (``score^1 * IoU^6``): the
level that fits an object is learnt, not fixed by hand-set size ranges.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcvkit.models.classify.base import pair
from dcvkit.models.detect.targets import RoISampler, task_aligned_assign
from dcvkit.models.detect.yolo import MAX_LOG_DISTANCE, ConvBNAct, _Fusable
from dcvkit.models.registry import register_model

BASE_WIDTHS = (64, 128, 256, 512, 1024)  # YOLOv8's channels at width 1.0 (n: 0.25, s: 0.5)
BASE_DEPTHS = (3, 6, 6, 3)  # its C2f repeats at depth 1.0 (n and s: 0.34)


class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool = True):
        super().__init__()
        self.cv1, self.cv2 = ConvBNAct(c, c, 3), ConvBNAct(c, c, 3)
        self.add = shortcut

    def forward(self, x: Tensor) -> Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """YOLOv8's CSP block: split in two halves, ``n`` bottlenecks on one, every intermediate concatenated."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = True):
        super().__init__()
        self.c = c_out // 2
        self.cv1 = ConvBNAct(c_in, 2 * self.c, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))
        self.cv2 = ConvBNAct((2 + n) * self.c, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained 5x5 max-pools concatenated (YOLOv5/8)."""

    def __init__(self, c: int):
        super().__init__()
        self.cv1, self.cv2 = ConvBNAct(c, c // 2, 1), ConvBNAct(c * 2, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(F.max_pool2d(y[-1], 5, 1, 2))
        return self.cv2(torch.cat(y, 1))


class Head(nn.Module):
    """One level's decoupled head: (N, c, h, w) -> (N, h * w, 5 + C)."""

    def __init__(self, c: int, hidden: int, num_classes: int):
        super().__init__()
        self.box = nn.Sequential(ConvBNAct(c, hidden, 3), ConvBNAct(hidden, hidden, 3), nn.Conv2d(hidden, 5, 1))
        self.cls = nn.Sequential(ConvBNAct(c, hidden, 3), ConvBNAct(hidden, hidden, 3),
                                 nn.Conv2d(hidden, num_classes, 1))
        prior = -math.log((1 - 0.01) / 0.01)  # start every cell at objectness / class probability 0.01
        for conv in (self.box[-1], self.cls[-1]):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.constant_(conv.bias, prior)
        with torch.no_grad():
            self.box[-1].bias[:4] = math.log(2.0)  # initial distances: two strides to each side

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.box(x), self.cls(x)], 1).flatten(2).transpose(1, 2)


class YOLOPyramid(_Fusable):
    """Anchor-free YOLO on three levels (strides 8, 16, 32) with a PAN neck.

    Args:
        num_classes, in_chans: as for every detector.
        img_size: the training size (any size divisible by 32 runs; the grids follow the input).
        width, depth: multipliers of YOLOv8's channels (64..1024) and C2f repeats (3, 6, 6, 3).
        topk: cells assigned to each object (task-aligned assignment).
        box_gain: weight of the box (CIoU) loss against the objectness and class losses.
    """

    strides = (8, 16, 32)
    # the real-size recipe: mosaics, random affine, EMA of the weights (warm-up: --warmup-epochs)
    defaults = {**_Fusable.defaults, "mosaic": 0.5, "affine": 0.5, "ema": 0.9998}

    def __init__(self, *, num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 640,
                 width: float = 0.25, depth: float = 0.34, topk: int = 10, box_gain: float = 5.0):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        self.topk, self.box_gain = topk, box_gain
        c1, c2, c3, c4, c5 = (max(8, int(round(c * width / 8)) * 8) for c in BASE_WIDTHS)
        d1, d2, d3, d4 = (max(1, round(d * depth)) for d in BASE_DEPTHS)
        self.stem = nn.Sequential(ConvBNAct(in_chans, c1, 3, 2), ConvBNAct(c1, c2, 3, 2), C2f(c2, c2, d1))
        self.stage3 = nn.Sequential(ConvBNAct(c2, c3, 3, 2), C2f(c3, c3, d2))
        self.stage4 = nn.Sequential(ConvBNAct(c3, c4, 3, 2), C2f(c4, c4, d3))
        self.stage5 = nn.Sequential(ConvBNAct(c4, c5, 3, 2), C2f(c5, c5, d4), SPPF(c5))
        self.top4 = C2f(c5 + c4, c4, d4, shortcut=False)
        self.top3 = C2f(c4 + c3, c3, d4, shortcut=False)
        self.down3 = ConvBNAct(c3, c3, 3, 2)
        self.bottom4 = C2f(c3 + c4, c4, d4, shortcut=False)
        self.down4 = ConvBNAct(c4, c4, 3, 2)
        self.bottom5 = C2f(c4 + c5, c5, d4, shortcut=False)
        hidden = max(32, c3)
        self.heads = nn.ModuleList(Head(c, hidden, num_classes) for c in (c3, c4, c5))
        self.widths = (c1, c2, c3, c4, c5)
        self._grids: dict[tuple, tuple[Tensor, Tensor]] = {}

    def forward(self, images: Tensor) -> Tensor:
        """(N, in_chans, H, W) -> (N, K, 5 + C): every level's cells, finest first."""
        c3 = self.stage3(self.stem(images))
        c4 = self.stage4(c3)
        c5 = self.stage5(c4)
        n4 = self.top4(torch.cat([F.interpolate(c5, size=c4.shape[-2:], mode="nearest"), c4], 1))
        p3 = self.top3(torch.cat([F.interpolate(n4, size=c3.shape[-2:], mode="nearest"), c3], 1))
        p4 = self.bottom4(torch.cat([self.down3(p3), n4], 1))
        p5 = self.bottom5(torch.cat([self.down4(p4), c5], 1))
        return torch.cat([h(p) for h, p in zip(self.heads, (p3, p4, p5))], 1)

    def grid(self, shapes: list[tuple[int, int]], device: torch.device | str) -> tuple[Tensor, Tensor]:
        """(K, 2) cell centres (x, y) in pixels and (K,) strides of the levels' cells, finest first (cached)."""
        key = (tuple(shapes), str(device))
        if key not in self._grids:
            centres, strides = [], []
            for (h, w), s in zip(shapes, self.strides):
                ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
                centres.append((torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * s)
                strides.append(torch.full((h * w,), float(s), device=device))
            self._grids[key] = (torch.cat(centres), torch.cat(strides))
        return self._grids[key]

    def _split(self, out: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        h, w = size
        shapes = [(-(-h // s), -(-w // s)) for s in self.strides]
        centres, strides = self.grid(shapes, out.device)
        dist = torch.exp(out[..., :4].float().clamp(max=MAX_LOG_DISTANCE)) * strides[:, None]
        boxes = torch.cat([centres - dist[..., :2], centres + dist[..., 2:]], -1)
        return boxes, out[..., 4].float(), out[..., 5:].float(), centres, strides

    def predict(self, images: Tensor) -> tuple[Tensor, Tensor]:
        boxes, obj, cls, _, _ = self._split(self(images), (images.shape[-2], images.shape[-1]))
        return boxes, torch.sigmoid(obj)[..., None] * torch.sigmoid(cls)

    def loss(self, images, boxes, labels, proposals=None, sampler=RoISampler(), box_weight=1.0):
        from dcvkit.losses.detection import yolo_loss

        pred, obj, cls, centres, strides = self._split(self(images), (images.shape[-2], images.shape[-1]))
        with torch.no_grad():
            scores = torch.sigmoid(obj)[..., None] * torch.sigmoid(cls)
            matched = torch.stack([task_aligned_assign(pred[i].detach(), scores[i], centres, b.to(pred),
                                                       lab.to(pred.device), self.topk)
                                   for i, (b, lab) in enumerate(zip(boxes, labels))])
        return yolo_loss(pred, obj, cls, matched, [b.to(pred) for b in boxes], [lab.to(pred.device) for lab in labels],
                         self.box_gain)


@register_model("detect")
def yolo_n(num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 640, **kwargs) -> YOLOPyramid:
    """Multi-scale YOLO, nano: strides 8/16/32, PAN neck, task-aligned assignment (YOLOv8n's widths, ~3.0M params)."""
    return YOLOPyramid(num_classes=num_classes, in_chans=in_chans, img_size=img_size,
                       **{"width": 0.25, "depth": 0.34, **kwargs})


@register_model("detect")
def yolo_s(num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 640, **kwargs) -> YOLOPyramid:
    """Multi-scale YOLO, small: yolo_n at twice the width (YOLOv8s's widths, ~12M params)."""
    return YOLOPyramid(num_classes=num_classes, in_chans=in_chans, img_size=img_size,
                       **{"width": 0.5, "depth": 0.34, **kwargs})


__all__ = ["YOLOPyramid", "C2f", "SPPF", "yolo_n", "yolo_s"]
