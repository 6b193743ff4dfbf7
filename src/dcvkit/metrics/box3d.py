"""Overlap of oriented boxes, batched on tensors: bird's-eye-view (rotated rectangle) IoU and 3-D IoU.

Boxes are LiDAR boxes (x, y, z centre, l, w, h, yaw) or their bird's-eye view (x, y, l, w, yaw). The
intersection of two rotated rectangles is a convex polygon whose vertices are the corners of each inside
the other and the crossings of their edges (at most 8 of 24 candidates): all candidates are computed for
every pair at once, the valid ones sorted by angle about their mean, and the area is the shoelace formula
over them. Written here because neither torchvision nor OpenCV does it batched (torchvision's ``box_iou``
is axis-aligned; ``cv2.rotatedRectangleIntersection`` and shapely take one pair per call, ~40 us each, where
this does 10,000 pairs in a few milliseconds); the tests check it against shapely to 1e-6.
"""

from __future__ import annotations

import torch
from torch import Tensor


def bev_corners(boxes: Tensor) -> Tensor:
    """(N, 5) x y l w yaw -> (N, 4, 2) corners, counter-clockwise."""
    x, y, l, w, yaw = boxes.unbind(-1)
    c, s = torch.cos(yaw), torch.sin(yaw)
    dx = torch.stack([l, -l, -l, l], -1) / 2
    dy = torch.stack([w, w, -w, -w], -1) / 2
    return torch.stack([x[:, None] + c[:, None] * dx - s[:, None] * dy,
                        y[:, None] + s[:, None] * dx + c[:, None] * dy], -1)


def _cross(a: Tensor, b: Tensor) -> Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _inside(points: Tensor, poly: Tensor, eps: float) -> Tensor:
    """(P, K, 2) points inside (or on) the counter-clockwise (P, 4, 2) polygons -> (P, K)."""
    edge = torch.roll(poly, -1, 1) - poly                       # (P, 4, 2)
    rel = points[:, :, None, :] - poly[:, None, :, :]           # (P, K, 4, 2)
    return (_cross(edge[:, None], rel) >= -eps).all(-1)


def intersection_area(a: Tensor, b: Tensor) -> Tensor:
    """Areas of the intersections of paired (P, 4, 2) counter-clockwise rectangles -> (P,)."""
    p = len(a)
    if p == 0:
        return a.new_zeros(0)
    scale = torch.cat([a, b], 1).abs().amax().clamp_min(1.0)
    eps = (1e-9 if a.dtype == torch.float64 else 1e-5) * float(scale) ** 2
    a1, b1 = a[:, :, None, :], b[:, None, :, :]                  # edges i of a, j of b
    da, db = (torch.roll(a, -1, 1) - a)[:, :, None, :], (torch.roll(b, -1, 1) - b)[:, None, :, :]
    denom = _cross(da, db)                                      # (P, 4, 4)
    safe = torch.where(denom.abs() > eps, denom, torch.ones_like(denom))
    t = _cross(b1 - a1, db) / safe
    u = _cross(b1 - a1, da) / safe
    tol = 1e-9 if a.dtype == torch.float64 else 1e-6
    ok = (denom.abs() > eps) & (t >= -tol) & (t <= 1 + tol) & (u >= -tol) & (u <= 1 + tol)
    cross_pts = (a1 + t[..., None] * da).reshape(p, 16, 2)
    pts = torch.cat([a, b, cross_pts], 1)                       # (P, 24, 2)
    valid = torch.cat([_inside(a, b, eps), _inside(b, a, eps), ok.reshape(p, 16)], 1)
    count = valid.sum(1)
    centre = (pts * valid[..., None]).sum(1) / count.clamp_min(1)[:, None]
    rel = pts - centre[:, None]
    angle = torch.atan2(rel[..., 1], rel[..., 0]).masked_fill(~valid, 10.0)   # invalid ones last
    order = angle.argsort(1)
    rel = rel.gather(1, order[..., None].expand(-1, -1, 2))
    valid = valid.gather(1, order)
    rel = torch.where(valid[..., None], rel, rel[:, :1].expand_as(rel))  # pad with the first: zero-area edges
    area = _cross(rel, torch.roll(rel, -1, 1)).sum(1).abs() / 2
    return torch.where(count >= 3, area, torch.zeros_like(area))


def _pairs(a: Tensor, b: Tensor, aligned: bool) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    if aligned:
        return a, b, (len(a),)
    n, m = len(a), len(b)
    return a[:, None].expand(n, m, a.shape[-1]).reshape(-1, a.shape[-1]), \
        b[None].expand(n, m, b.shape[-1]).reshape(-1, b.shape[-1]), (n, m)


def bev_iou(a: Tensor, b: Tensor, aligned: bool = False) -> Tensor:
    """Bird's-eye-view IoU of (N, 5) and (M, 5) boxes (x y l w yaw; or (., 7) LiDAR boxes): (N, M), or (N,) for
    paired boxes with ``aligned``."""
    a, b = (x[:, [0, 1, 3, 4, 6]] if x.shape[-1] == 7 else x for x in (a, b))
    pa, pb, shape = _pairs(a, b, aligned)
    inter = intersection_area(bev_corners(pa), bev_corners(pb))
    union = pa[:, 2] * pa[:, 3] + pb[:, 2] * pb[:, 3] - inter
    return (inter / union.clamp_min(1e-12)).reshape(shape)


def iou_3d(a: Tensor, b: Tensor, aligned: bool = False) -> Tensor:
    """3-D IoU of (N, 7) and (M, 7) LiDAR boxes (the BEV intersection times the overlap in height): (N, M), or
    (N,) with ``aligned``."""
    pa, pb, shape = _pairs(a, b, aligned)
    inter = intersection_area(bev_corners(pa[:, [0, 1, 3, 4, 6]]), bev_corners(pb[:, [0, 1, 3, 4, 6]]))
    top = torch.minimum(pa[:, 2] + pa[:, 5] / 2, pb[:, 2] + pb[:, 5] / 2)
    bottom = torch.maximum(pa[:, 2] - pa[:, 5] / 2, pb[:, 2] - pb[:, 5] / 2)
    inter = inter * (top - bottom).clamp_min(0)
    union = pa[:, 3] * pa[:, 4] * pa[:, 5] + pb[:, 3] * pb[:, 4] * pb[:, 5] - inter
    return (inter / union.clamp_min(1e-12)).reshape(shape)


def rotated_nms(boxes: Tensor, scores: Tensor, iou: float) -> Tensor:
    """Greedy non-maximum suppression in bird's-eye view: the indices kept, best first (no rotated NMS in
    torchvision; the IoU matrix is one batched call, the greedy pass a loop over the kept boxes)."""
    order = scores.argsort(descending=True)
    if len(order) == 0:
        return order
    overlaps = bev_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i] > iou
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


__all__ = ["bev_corners", "intersection_area", "bev_iou", "iou_3d", "rotated_nms"]
