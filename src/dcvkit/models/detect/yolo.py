"""YOLO, written here from the papers: ``yolo_v1`` (Redmon et al. 2016) and ``yolo``, a small modern
variant (anchor-free like YOLOX/FCOS, an IoU-aware classification target, CIoU box loss, trained with
mosaic). One network pass per image, no proposals.

``yolo_v1`` data flow (128 x 128 input, S = 8, B = 2, C classes)::

    image (N, 3, 128, 128) -> backbone (stride 16) -> (N, 128, 8, 8)
      head "conv" (default): two 3x3 convs 256 (LeakyReLU 0.1) -> 1x1 conv 5B + C -> (N, S, S, 5B + C)
      head "dense" (the paper's): 1x1 conv 64 -> flatten -> dense 512 -> LeakyReLU -> dropout 0.5
                                  -> dense S*S*(5B + C)

  per cell: B boxes of (x, y, sqrt w, sqrt h, confidence), x and y relative to the cell, w and h to the
  image, then C class probabilities shared by the cell's boxes (squashed by sigmoid / softmax here so that
  training from scratch is stable; the paper regressed the raw values). Score of box b for class c =
  confidence_b * P(c | object). The paper's dense head (a 4096-unit layer over a pretrained backbone) does not
  learn from scratch on a few thousand images (measured: no class learned in two epochs on FashionScenes,
  validation mAP 0), so the default head computes the same S x S x (5B + C) output with convolutions, as
  YOLOv2 did; the formulation, assignment and loss are v1's.

``yolo`` data flow (widths scale with ``width``)::

    image (N, 3, 128, 128) -> conv s2 16 -> conv s2 32 -> conv s2 64 = P8 (N, 64, 16, 16)
      P8 -> conv s2 128 -> 2 residual blocks = P16 (N, 128, 8, 8)
      [P8, upsample(1x1 conv 32 (P16))] -> 3x3 conv 48 -> 1x1 conv -> (N, 4 + 1 + C, 16, 16)

  Sized for speed at batch 1 on a CPU (~100 MFLOPs per 128x128 image would be compute-bound at ~1 ms): the
  stride-8 path has no residual unit and the neck is narrow; the depth sits at stride 16, where each cell
  sees a whole object (receptive field ~110 px).

  per stride-8 cell: distances (left, top, right, bottom) from the cell centre, ``exp(t) * stride``;
  an objectness logit; C class logits. Score = sigmoid(objectness) * sigmoid(class).

Inference folds each batch norm into its convolution (:meth:`YOLO.fuse`): fewer operations per image.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from dcvkit.models.classify.base import pair
from dcvkit.models.detect.base import Detector
from dcvkit.models.detect.postprocess import Detections, PostProcess
from dcvkit.models.detect.targets import RoISampler, centre_assign, yolo_v1_assign
from dcvkit.models.registry import register_model

# exp() of a predicted log-distance is clamped so a wild prediction cannot overflow
MAX_LOG_DISTANCE = 6.0


class ConvBNAct(nn.Module):
    """conv k x k (stride s) -> batch norm -> activation; :meth:`fuse` folds the norm into the conv."""

    def __init__(self, in_chans: int, out_chans: int, k: int = 3, s: int = 1, act: type[nn.Module] = nn.SiLU):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, out_chans, k, s, k // 2, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_chans)
        self.act = act(inplace=True) if act is not nn.Identity else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))

    def fuse(self) -> None:
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv, self.bn = fuse_conv_bn_eval(self.conv.eval(), self.bn.eval()), nn.Identity()


class Residual(nn.Module):
    """x + 3x3(1x1(x)) at half the width inside (YOLOv3's residual unit)."""

    def __init__(self, chans: int):
        super().__init__()
        self.reduce, self.expand = ConvBNAct(chans, chans // 2, 1), ConvBNAct(chans // 2, chans, 3)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.expand(self.reduce(x))


class YOLOBackbone(nn.Module):
    """(N, C, H, W) -> P8 (N, w3, H/8, W/8), P16 (N, w4, H/16, W/16): stride-2 3x3 convolutions, with
    ``residual8`` residual units after P8's and ``residual16`` after P16's."""

    def __init__(self, in_chans: int = 3, widths: Sequence[int] = (16, 32, 64, 128), residual8: int = 1,
                 residual16: int = 2):
        super().__init__()
        a, b, c, d = widths
        self.p8 = nn.Sequential(ConvBNAct(in_chans, a, 3, 2), ConvBNAct(a, b, 3, 2), ConvBNAct(b, c, 3, 2),
                                *[Residual(c) for _ in range(residual8)])
        self.p16 = nn.Sequential(ConvBNAct(c, d, 3, 2), *[Residual(d) for _ in range(residual16)])
        self.widths = tuple(widths)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        p8 = self.p8(x)
        return p8, self.p16(p8)


def _leaky(inplace: bool = True) -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=inplace)  # YOLO v1's activation


def _widths(width: float) -> tuple[int, ...]:
    return tuple(max(8, int(round(c * width / 8)) * 8) for c in (16, 32, 64, 128))


class _Fusable(Detector):
    """What both YOLOs share: one pass over a grid (no regions), exportable as one graph, batch norms folded
    for inference."""

    kind = "grid"
    proposal_method = "none"
    # steps are cheap (one pass, no regions): more epochs, larger batches
    defaults = {"epochs": 50, "batch_size": 16, "rois_per_image": 64, "mosaic": 0.0, "affine": 0.0,
                "ema": 0.0, "monitor": "val_map50"}
    export_outputs = ("boxes", "scores")

    def forward_export(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self.predict(images)

    def fuse(self) -> "_Fusable":
        """Fold every batch norm into its convolution (eval mode only: the running statistics are used)."""
        self.eval()
        for m in self.modules():
            if isinstance(m, ConvBNAct):
                m.fuse()
        return self

    @torch.inference_mode()
    def detect(self, images: Tensor, proposals: Sequence[Tensor] | None = None,
               post: PostProcess = PostProcess()) -> list[Detections]:
        """Detections per image: every cell's boxes and class scores, post-processed (no proposals)."""
        boxes, scores = self.predict(images)
        size = (images.shape[-2], images.shape[-1])
        return [post(b, s, size) for b, s in zip(boxes, scores)]

    def predict(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Boxes (N, K, 4) pixels x1 y1 x2 y2 and class scores (N, K, C) in [0, 1] for every prediction."""
        return self.decode(self(images))

    def decode(self, out: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class YOLO(_Fusable):
    """Anchor-free YOLO on one stride-8 grid fed by a stride-16 path (a two-level neck).

    Args:
        num_classes: object classes.
        in_chans: image channels.
        img_size: the training image size (any size divisible by 16 runs).
        width: width multiplier of every layer (1.0: 16, 32, 64, 128 channels; ~0.31M parameters).
        radius: centre sampling: a cell is a positive for an object when its centre lies inside the box and
            within ``radius`` strides of the box centre.
        box_gain: weight of the box (CIoU) loss against the objectness and class losses.
    """

    stride = 8
    defaults = {**_Fusable.defaults, "mosaic": 0.5}  # trained with mosaics by default (its loss sees every cell)

    def __init__(self, *, num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128,
                 width: float = 1.0, radius: float = 1.5, box_gain: float = 5.0):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        self.radius, self.box_gain = radius, box_gain
        w = _widths(width)
        self.backbone = YOLOBackbone(in_chans, w, residual8=0, residual16=2)
        c, d = w[2], w[3]
        self.lateral = ConvBNAct(d, c // 2, 1)
        self.fuse_p8 = ConvBNAct(c + c // 2, 3 * c // 4, 3)
        self.head = nn.Conv2d(3 * c // 4, 5 + num_classes, 1)
        self._centres: dict[tuple, Tensor] = {}
        prior = -math.log((1 - 0.01) / 0.01)  # start every cell at objectness / class probability 0.01
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.zero_()
            self.head.bias[:4] = math.log(2.0)  # initial distances: two strides to each side
            self.head.bias[4:] = prior

    def forward(self, images: Tensor) -> Tensor:
        """(N, in_chans, H, W) -> (N, 5 + C, H/8, W/8): 4 log-distances, objectness, class logits."""
        p8, p16 = self.backbone(images)
        up = F.interpolate(self.lateral(p16), size=p8.shape[-2:], mode="nearest")
        return self.head(self.fuse_p8(torch.cat([p8, up], 1)))

    def centres(self, h: int, w: int, device: torch.device | str = "cpu") -> Tensor:
        """(h * w, 2) pixel centres (x, y) of the grid cells, row by row (cached per grid: at batch 1 the
        eight small ops that make them cost as much as a convolution)."""
        key = (h, w, str(device))
        if key not in self._centres:
            ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
            self._centres[key] = (torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * self.stride
        return self._centres[key]

    def _split(self, out: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n, _, h, w = out.shape
        flat = out.flatten(2).transpose(1, 2)  # (N, h*w, 5 + C)
        c = self.centres(h, w, out.device)
        dist = torch.exp(flat[..., :4].float().clamp(max=MAX_LOG_DISTANCE)) * self.stride
        boxes = torch.cat([c - dist[..., :2], c + dist[..., 2:]], -1)
        return boxes, flat[..., 4].float(), flat[..., 5:].float(), c

    def decode(self, out: Tensor) -> tuple[Tensor, Tensor]:
        boxes, obj, cls, _ = self._split(out)
        return boxes, torch.sigmoid(obj)[..., None] * torch.sigmoid(cls)

    def loss(self, images, boxes, labels, proposals=None, sampler=RoISampler(), box_weight=1.0):
        from dcvkit.losses.detection import yolo_loss

        pred, obj, cls, centres = self._split(self(images))
        matched = torch.stack([centre_assign(centres, b.to(centres), self.stride, self.radius) for b in boxes])
        return yolo_loss(pred, obj, cls, matched, [b.to(pred) for b in boxes], [lab.to(pred.device) for lab in labels],
                         self.box_gain)


class YOLOv1(_Fusable):
    """The original YOLO: an S x S grid, B boxes per cell, dense layers over the whole image.

    Args:
        num_classes, in_chans, img_size: as for every detector; S = img_size / 16.
        boxes_per_cell: B.
        width: width multiplier of the convolutional part.
        head: ``conv`` (3x3 convolutions per cell) or ``dense`` (the paper's dense layers over the image).
        hidden: width of the dense layer (``dense`` head).
        dropout: before the last dense layer (the paper: 0.5).
        lambda_coord, lambda_noobj: the paper's loss weights (5 and 0.5).
    """

    fixed_size = True  # an S x S grid of the training size (and, with the dense head, dense layers)

    def __init__(self, *, num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128,
                 boxes_per_cell: int = 2, width: float = 1.0, head: str = "conv", hidden: int = 512,
                 dropout: float = 0.5, lambda_coord: float = 5.0, lambda_noobj: float = 0.5):
        super().__init__()
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, pair(img_size)
        self.b, self.lambda_coord, self.lambda_noobj = boxes_per_cell, lambda_coord, lambda_noobj
        self.grid = (self.img_size[0] // 16, self.img_size[1] // 16)
        w = _widths(width)
        self.backbone = YOLOBackbone(in_chans, w)
        out = 5 * boxes_per_cell + num_classes
        s = self.grid[0] * self.grid[1]
        if head == "conv":
            self.head: nn.Module = nn.Sequential(ConvBNAct(w[3], 2 * w[3], 3, act=_leaky),
                                                 ConvBNAct(2 * w[3], 2 * w[3], 3, act=_leaky),
                                                 nn.Conv2d(2 * w[3], out, 1))
        elif head == "dense":
            self.head = nn.Sequential(ConvBNAct(w[3], 64, 1, act=_leaky), nn.Flatten(), nn.Linear(64 * s, hidden),
                                      nn.LeakyReLU(0.1, inplace=True), nn.Dropout(dropout), nn.Linear(hidden, s * out))
        else:
            from dcvkit.errors import ConfigError

            raise ConfigError(f"yolo_v1: unknown head '{head}'; choose conv or dense")
        self.head_kind = head

    def forward(self, images: Tensor) -> Tensor:
        """(N, in_chans, H, W) -> (N, S, S, 5B + C) raw outputs."""
        _, p16 = self.backbone(images)
        if p16.shape[-2:] != self.grid:
            raise ValueError(f"yolo_v1 is built for {self.img_size} images, got {tuple(images.shape[-2:])}")
        y = self.head(p16)
        if self.head_kind == "conv":
            return y.permute(0, 2, 3, 1)
        return y.view(images.shape[0], *self.grid, 5 * self.b + self.num_classes)

    def _split(self, out: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Squashed outputs: boxes (N, S, S, B, 4) as (x, y, sqrt w, sqrt h), confidences (N, S, S, B),
        class probabilities (N, S, S, C)."""
        n, sy, sx, _ = out.shape
        bx = torch.sigmoid(out[..., :5 * self.b].float()).view(n, sy, sx, self.b, 5)
        return bx[..., :4], bx[..., 4], out[..., 5 * self.b:].float().softmax(-1)

    def to_pixels(self, xywh: Tensor) -> Tensor:
        """(N, S, S, B, 4) cell-relative (x, y, sqrt w, sqrt h) -> image pixels x1 y1 x2 y2."""
        sy, sx = xywh.shape[1:3]
        h, w = self.img_size
        gy, gx = torch.meshgrid(torch.arange(sy, device=xywh.device), torch.arange(sx, device=xywh.device),
                                indexing="ij")
        cx = (gx[None, :, :, None] + xywh[..., 0]) * (w / sx)
        cy = (gy[None, :, :, None] + xywh[..., 1]) * (h / sy)
        bw, bh = xywh[..., 2] ** 2 * w, xywh[..., 3] ** 2 * h
        return torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)

    def decode(self, out: Tensor) -> tuple[Tensor, Tensor]:
        xywh, conf, probs = self._split(out)
        n = out.shape[0]  # not len(): a symbolic batch size must stay symbolic for export
        boxes = self.to_pixels(xywh).reshape(n, -1, 4)
        scores = (conf[..., None] * probs[:, :, :, None, :]).reshape(n, -1, self.num_classes)
        return boxes, scores

    def loss(self, images, boxes, labels, proposals=None, sampler=RoISampler(), box_weight=1.0):
        from dcvkit.losses.detection import yolo_v1_loss

        xywh, conf, probs = self._split(self(images))
        pixels = self.to_pixels(xywh.detach())
        targets = [yolo_v1_assign(b.to(xywh), lab.to(xywh.device), pixels[i], self.img_size)
                   for i, (b, lab) in enumerate(zip(boxes, labels))]
        return yolo_v1_loss(xywh, conf, probs, targets, self.lambda_coord, self.lambda_noobj)


@register_model("detect")
def yolo(num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128, width: float = 1.0,
         **kwargs) -> YOLO:
    """YOLO, modern and small: anchor-free stride-8 grid with a stride-16 path, IoU-aware loss (~0.31M params)."""
    return YOLO(num_classes=num_classes, in_chans=in_chans, img_size=img_size, width=width, **kwargs)


@register_model("detect")
def yolo_v1(num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128, width: float = 1.0,
            **kwargs) -> YOLOv1:
    """YOLO v1: S x S grid (S = size / 16), B = 2 boxes per cell, confidence, C classes, the paper's loss."""
    return YOLOv1(num_classes=num_classes, in_chans=in_chans, img_size=img_size, width=width, **kwargs)


__all__ = ["YOLO", "YOLOv1", "yolo", "yolo_v1", "ConvBNAct"]
