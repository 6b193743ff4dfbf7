"""PointPillars (Lang et al. 2019) with a centre-heatmap head, in plain PyTorch ops: no spconv, no CUDA
kernels, the same code on a CPU and a GPU.

Data flow (defaults: 0.32 m pillars over x 0..40.96 m, y -20.48..20.48 m; widths scale with ``width``)::

    points (B, N, 4) x y z intensity, a count per cloud
      -> pillars: each point's (x, y) cell; 9 features per point (x y z i, offsets to its pillar's mean and
         centre); a small PointNet (linear 9 -> 32, batch norm, ReLU) and the max over each pillar's points
         (``scatter_reduce``: any number of points per pillar, none dropped)
      -> scatter to a bird's-eye-view pseudo-image (B, 32, 128, 128)
      -> 2-D CNN of the project's conv blocks: stride 2 (64 ch, 64 x 64) and stride 4 (128 ch, 32 x 32),
         both brought to 64 x 64 and concatenated (SECOND's FPN-like neck)
      -> head per 0.64 m cell: a heatmap per class (CenterPoint's, focal loss), the centre's offset in the cell,
         its height, log l w h, the axis angle as (sin 2 yaw, cos 2 yaw) and PointPillars' direction
         classifier (which way along the axis the box faces: the only thing AOS needs it for)

Decoding: the heatmap's local maxima (3 x 3), the best ``max_det`` of them, boxes from the regressions, then
rotated NMS in bird's-eye view per class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcvkit.models.detect.yolo import ConvBNAct
from dcvkit.models.detect3d.base import Detections3D, Detector3D, Grid
from dcvkit.models.registry import register_model


class PillarNet(nn.Module):
    """Points -> pillar features -> the bird's-eye-view pseudo-image."""

    def __init__(self, grid: Grid, chans: int):
        super().__init__()
        self.grid, self.chans = grid, chans
        self.linear = nn.Linear(9, chans, bias=False)
        self.norm = nn.BatchNorm1d(chans)

    def forward(self, points: Tensor, counts: Tensor) -> Tensor:
        g = self.grid
        b, n, _ = points.shape
        h, w = g.shape
        valid = torch.arange(n, device=points.device)[None] < counts[:, None]
        x, y, z = points[..., 0], points[..., 1], points[..., 2]
        valid &= (x >= g.x[0]) & (x < g.x[1]) & (y >= g.y[0]) & (y < g.y[1]) & (z >= g.z[0]) & (z < g.z[1])
        pts = points[valid]                                              # (M, 4)
        batch = torch.arange(b, device=points.device)[:, None].expand(b, n)[valid]
        ix = ((pts[:, 0] - g.x[0]) / g.pillar).long().clamp_(0, w - 1)
        iy = ((pts[:, 1] - g.y[0]) / g.pillar).long().clamp_(0, h - 1)
        cell = (batch * h + iy) * w + ix
        cells, pillar = torch.unique(cell, return_inverse=True)
        k = len(cells)
        count = torch.zeros(k, device=pts.device).index_add_(0, pillar, torch.ones_like(pts[:, 0]))
        mean = torch.zeros(k, 3, device=pts.device, dtype=pts.dtype).index_add_(0, pillar, pts[:, :3])
        mean = mean / count[:, None]
        centre = torch.stack([(ix.to(pts.dtype) + 0.5) * g.pillar + g.x[0],
                              (iy.to(pts.dtype) + 0.5) * g.pillar + g.y[0]], 1)
        feats = torch.cat([pts, pts[:, :3] - mean[pillar], pts[:, :2] - centre], 1)
        f = F.relu(self.norm(self.linear(feats)))                         # (M, C), >= 0
        pooled = f.new_zeros(k, self.chans).scatter_reduce_(0, pillar[:, None].expand_as(f), f, "amax")
        canvas = f.new_zeros(b * h * w, self.chans)
        canvas[cells] = pooled
        return canvas.view(b, h, w, self.chans).permute(0, 3, 1, 2).contiguous()


def _stage(c_in: int, c_out: int, depth: int) -> nn.Sequential:
    return nn.Sequential(ConvBNAct(c_in, c_out, 3, 2, act=nn.ReLU),
                         *[ConvBNAct(c_out, c_out, 3, 1, act=nn.ReLU) for _ in range(depth)])


def gaussian_radius(l_cells: Tensor, w_cells: Tensor, min_overlap: float = 0.1) -> Tensor:
    """CenterNet's radius: how far a centre may move for a box of this size to keep ``min_overlap`` IoU with the
    truth (the smallest of its three cases), in cells."""
    h, w = l_cells, w_cells
    b1, c1 = h + w, w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2, c2 = 2 * (h + w), (1 - min_overlap) * w * h
    r2 = (b2 + torch.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (h + w), (min_overlap - 1) * w * h
    r3 = (b3 + torch.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def focal_heatmap_loss(logits: Tensor, target: Tensor) -> Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres."""
    p = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_loss = F.logsigmoid(logits) * (1 - p) ** 2 * pos
    neg_loss = F.logsigmoid(-logits) * p ** 2 * (1 - target) ** 4 * neg
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp_min(1)


@dataclass(frozen=True)
class _Targets:
    heatmap: Tensor      # (B, C, H, W)
    index: Tensor        # (K, 3) batch, row, column of each object's centre cell
    regression: Tensor   # (K, 8) offset x y, z, log l w h, sin 2 yaw, cos 2 yaw
    direction: Tensor    # (K,) 0 / 1


class PointPillars(Detector3D):
    """The pillar net, the 2-D CNN, the centre head; ``loss`` and ``predict`` (the family's face)."""

    def __init__(self, num_classes: int = 3, width: float = 1.0, grid: Grid = Grid()):
        super().__init__(num_classes, grid)
        c = [max(8, int(round(v * width / 8)) * 8) for v in (32, 64, 128, 64)]
        self.pillars = PillarNet(grid, c[0])
        self.stage1, self.stage2 = _stage(c[0], c[1], 2), _stage(c[1], c[2], 2)
        self.lateral1 = ConvBNAct(c[1], c[3], 1, act=nn.ReLU)
        self.up2 = nn.Sequential(nn.ConvTranspose2d(c[2], c[3], 2, 2, bias=False), nn.BatchNorm2d(c[3]), nn.ReLU())
        self.neck = ConvBNAct(2 * c[3], c[3], 3, act=nn.ReLU)
        self.heatmap = nn.Conv2d(c[3], num_classes, 1)
        self.box = nn.Conv2d(c[3], 8, 1)
        self.direction = nn.Conv2d(c[3], 2, 1)
        nn.init.constant_(self.heatmap.bias, -math.log((1 - 0.01) / 0.01))  # RetinaNet's prior: 1 % positive

    def forward(self, points: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.pillars(points, counts)
        s1 = self.stage1(x)
        s2 = self.stage2(s1)
        f = self.neck(torch.cat([self.lateral1(s1), self.up2(s2)], 1))
        return self.heatmap(f), self.box(f), self.direction(f)

    def targets(self, boxes: list[Tensor], labels: list[Tensor], shape: tuple[int, int]) -> _Targets:
        g, cell = self.grid, self.grid.pillar * self.stride
        h, w = shape
        device = boxes[0].device if boxes else torch.device("cpu")
        heat = torch.zeros(len(boxes), self.num_classes, h, w, device=device)
        rows, cols = torch.arange(h, device=device)[:, None], torch.arange(w, device=device)[None]
        index, reg, direction = [], [], []
        for i, (b, lab) in enumerate(zip(boxes, labels)):
            if len(b) == 0:
                continue
            cx, cy = (b[:, 0] - g.x[0]) / cell, (b[:, 1] - g.y[0]) / cell
            inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
            b, lab, cx, cy = b[inside], lab[inside], cx[inside], cy[inside]
            ix, iy = cx.long(), cy.long()
            radius = gaussian_radius(b[:, 3] / cell, b[:, 4] / cell).clamp_min(2).floor()
            sigma = (2 * radius + 1) / 6
            for k in range(len(b)):
                gk = torch.exp(-((cols - ix[k]) ** 2 + (rows - iy[k]) ** 2).float() / (2 * sigma[k] ** 2))
                gk = gk * (((cols - ix[k]).abs() <= radius[k]) & ((rows - iy[k]).abs() <= radius[k]))
                heat[i, lab[k]] = torch.maximum(heat[i, lab[k]], gk)
            axis = torch.atan2(torch.sin(2 * b[:, 6]), torch.cos(2 * b[:, 6])) / 2
            index.append(torch.stack([torch.full_like(ix, i), iy, ix], 1))
            reg.append(torch.stack([cx - ix, cy - iy, b[:, 2], b[:, 3].log(), b[:, 4].log(), b[:, 5].log(),
                                    torch.sin(2 * b[:, 6]), torch.cos(2 * b[:, 6])], 1))
            direction.append((torch.cos(b[:, 6] - axis) < 0).long())
        if index:
            return _Targets(heat, torch.cat(index), torch.cat(reg), torch.cat(direction))
        return _Targets(heat, torch.zeros(0, 3, dtype=torch.long, device=device), torch.zeros(0, 8, device=device),
                        torch.zeros(0, dtype=torch.long, device=device))

    def loss(self, points: Tensor, counts: Tensor, boxes: list[Tensor], labels: list[Tensor]) -> dict[str, Tensor]:
        heat, box, direction = self(points, counts)
        t = self.targets(boxes, labels, tuple(heat.shape[-2:]))
        heat_loss = focal_heatmap_loss(heat.float(), t.heatmap)
        if len(t.index):
            b, r, c = t.index.unbind(1)
            pred = box[b, :, r, c].float()
            box_loss = F.l1_loss(pred, t.regression, reduction="none").mean(0)
            dir_loss = F.cross_entropy(direction[b, :, r, c].float(), t.direction)
            reg_loss = box_loss[:2].sum() + box_loss[2] + box_loss[3:6].sum() + box_loss[6:].sum()
        else:
            reg_loss = dir_loss = box.sum() * 0
        total = heat_loss + 2 * reg_loss + 0.2 * dir_loss
        return {"loss": total, "heatmap_loss": heat_loss.detach(), "box_loss": reg_loss.detach(),
                "dir_loss": dir_loss.detach()}

    @torch.no_grad()
    def predict(self, points: Tensor, counts: Tensor, score_thresh: float = 0.05, nms_iou: float = 0.1,
                max_det: int = 50) -> list[Detections3D]:
        from dcvkit.metrics.box3d import rotated_nms

        heat, box, direction = self(points, counts)
        heat = heat.float().sigmoid()
        peaks = heat * (heat == F.max_pool2d(heat, 3, 1, 1))
        b, c, h, w = heat.shape
        cell, g = self.grid.pillar * self.stride, self.grid
        out = []
        for i in range(b):
            scores, flat = peaks[i].flatten().topk(min(max_det * 2, c * h * w))
            keep = scores >= score_thresh
            scores, flat = scores[keep], flat[keep]
            cls, rem = flat // (h * w), flat % (h * w)
            r, col = rem // w, rem % w
            reg = box[i, :, r, col].float().T                              # (K, 8)
            x = (col.float() + reg[:, 0]) * cell + g.x[0]
            y = (r.float() + reg[:, 1]) * cell + g.y[0]
            dims = reg[:, 3:6].clamp(-5, 5).exp()
            axis = torch.atan2(reg[:, 6], reg[:, 7]) / 2
            yaw = axis + math.pi * direction[i, :, r, col].argmax(0).float()
            yaw = torch.remainder(yaw + math.pi, 2 * math.pi) - math.pi
            boxes = torch.cat([torch.stack([x, y, reg[:, 2]], 1), dims, yaw[:, None]], 1)
            kept = []
            for k in range(self.num_classes):
                idx = (cls == k).nonzero().flatten()
                if len(idx):
                    kept.append(idx[rotated_nms(boxes[idx], scores[idx], nms_iou)])
            sel = torch.cat(kept) if kept else torch.zeros(0, dtype=torch.long, device=boxes.device)
            sel = sel[scores[sel].argsort(descending=True)][:max_det]
            out.append(Detections3D(boxes[sel], cls[sel], scores[sel]))
        return out


@register_model("detect3d")
def pointpillars(num_classes: int = 3, width: float | None = None, **kwargs) -> PointPillars:
    """PointPillars: pillars of points -> BEV pseudo-image -> 2-D CNN -> centre heatmap, box and direction heads."""
    return PointPillars(num_classes, 1.0 if width is None else width, **kwargs)


__all__ = ["PointPillars", "PillarNet", "pointpillars", "focal_heatmap_loss", "gaussian_radius"]
