"""``heatmap``: top-down pose estimation, the SimpleBaseline design (Xiao et al. 2018) on this project's parts.

Each person's box (the ground truth, or another model's detections) is widened to the crop's aspect ratio
and padded by ``padding``, cut out of the image and resampled to ``crop`` (H, W) pixels in one
``roi_align`` call; an encoder-decoder from the registry's segment family (default the ``unet``: the
decoder keeps full resolution, as HRNet does, rather than SimpleBaseline's three deconvolutions from stride
32) turns each crop into K heatmaps, one per keypoint: a softmax over the crop's pixels trained towards a
Gaussian of ``sigma`` pixels at the keypoint (the KL divergence; keypoints outside the image or the crop
weigh 0). SimpleBaseline's mean squared error against the unnormalised Gaussian was tried first and sat at
its trivial answer, all zeros (the loss exactly the targets' energy, every peak under 0.03) after an epoch;
the distribution loss has no such answer and keypoint R-CNN trains the same way.

Decoding is sub-pixel: the heatmap's maximum, moved by a second-order Taylor step of the log-heatmap
(DARK, Zhang et al. 2020) - the quantisation of a 64-pixel crop would otherwise cost more than the head
keypoints' OKS tolerance of about two pixels. A keypoint's confidence is the probability mass in the 3x3
pixels about its peak over the mass a perfect heatmap (the target) puts there, at most 1; a person's score
is the box's score times the mean confidence of the keypoints that show (HRNet's rescoring).

Data flow::

    image (B, 3, H, W) + boxes -> crops (n, 3, 64, 48) -> unet -> heatmaps (n, K, 64, 48)
      -> peak + Taylor step -> (n, K, 2) crop pixels -> image pixels
"""

from __future__ import annotations

import math
from typing import ClassVar, Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align

from dcvkit.models.pose.base import PoseDetections, keypoint_score
from dcvkit.models.registry import create_model, register_model


def crop_boxes(boxes: Tensor, aspect: float, padding: float) -> Tensor:
    """Boxes (n, 4) widened (or heightened) to ``width / height = aspect`` about their centres, then scaled by
    ``padding``: the regions a top-down model sees, keypoints near the box's edges still inside."""
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    w, h = (boxes[:, 2] - boxes[:, 0]).clamp_min(1.0), (boxes[:, 3] - boxes[:, 1]).clamp_min(1.0)
    w, h = torch.maximum(w, h * aspect), torch.maximum(h, w / aspect)
    half = torch.stack([w, h], 1) * padding / 2
    return torch.cat([c - half, c + half], 1)


def gaussian_targets(keypoints: Tensor, regions: Tensor, size: tuple[int, int], sigma: float
                     ) -> tuple[Tensor, Tensor]:
    """Heatmap targets (n, K, h, w): a Gaussian of ``sigma`` heatmap pixels at each keypoint, peak 1, and
    weights (n, K): 1 for keypoints labelled (v > 0) that fall inside the region, else 0.

    Shape: keypoints (n, K, 3) image pixels; regions (n, 4)."""
    h, w = size
    scale = torch.stack([(regions[:, 2] - regions[:, 0]) / w, (regions[:, 3] - regions[:, 1]) / h], 1)
    uv = (keypoints[..., :2] - regions[:, None, :2]) / scale[:, None] - 0.5  # heatmap pixel centres at 0..w-1
    inside = (uv[..., 0] >= -0.5) & (uv[..., 0] <= w - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= h - 0.5)
    weight = ((keypoints[..., 2] > 0) & inside).float()
    xs = torch.arange(w, dtype=uv.dtype, device=uv.device)
    ys = torch.arange(h, dtype=uv.dtype, device=uv.device)
    gx = torch.exp(-(xs - uv[..., :1]) ** 2 / (2 * sigma ** 2))  # (n, K, w)
    gy = torch.exp(-(ys - uv[..., 1:]) ** 2 / (2 * sigma ** 2))  # (n, K, h)
    return gy[..., :, None] * gx[..., None, :], weight


def decode_heatmaps(heatmaps: Tensor, regions: Tensor) -> Tensor:
    """Keypoints (n, K, 3): x, y in image pixels and the heatmap's sum over the 3x3 pixels about its peak,
    from positive heatmaps (n, K, h, w) over ``regions`` (n, 4). The peak is refined by one Newton step of
    the log-heatmap from that neighbourhood (DARK's Taylor expansion), the step kept within one pixel."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.float().flatten(2)
    idx = flat.argmax(-1)
    px, py = (idx % w), (idx // w)
    logs = torch.nn.functional.pad(heatmaps.float().clamp_min(1e-10).log(), (1, 1, 1, 1), mode="replicate")

    def at(dx: int, dy: int) -> Tensor:
        return logs.flatten(2).gather(-1, ((py + 1 + dy) * (w + 2) + px + 1 + dx)[..., None])[..., 0]

    window = sum(at(dx, dy).exp() for dx in (-1, 0, 1) for dy in (-1, 0, 1))  # edges: the border pixel again
    c = at(0, 0)
    gx, gy = (at(1, 0) - at(-1, 0)) / 2, (at(0, 1) - at(0, -1)) / 2
    hxx, hyy = at(1, 0) - 2 * c + at(-1, 0), at(0, 1) - 2 * c + at(0, -1)
    hxy = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / 4
    det = hxx * hyy - hxy ** 2
    ok = (det > 1e-6) & (hxx < 0)  # a maximum: the Hessian negative definite
    safe = torch.where(ok, det, torch.ones_like(det))
    ox = torch.where(ok, -(hyy * gx - hxy * gy) / safe, torch.zeros_like(det)).clamp(-1, 1)
    oy = torch.where(ok, -(hxx * gy - hxy * gx) / safe, torch.zeros_like(det)).clamp(-1, 1)
    u, v = px.float() + ox, py.float() + oy
    scale_x = (regions[:, 2] - regions[:, 0]) / w
    scale_y = (regions[:, 3] - regions[:, 1]) / h
    x = regions[:, None, 0] + (u + 0.5) * scale_x[:, None]
    y = regions[:, None, 1] + (v + 0.5) * scale_y[:, None]
    return torch.stack([x, y, window], -1)


class HeatmapPose(nn.Module):
    """See the module docstring.

    Args:
        num_keypoints: K. in_chans: image channels. img_size: the training image size (kept for the meta).
        crop: (H, W) of the crops and heatmaps. padding: the crop's size over the (aspect-fixed) box's.
        sigma: the targets' Gaussian, heatmap pixels. net: a registry segmenter (num_classes = K).
        jitter: training-time random scale and shift of the boxes (fractions), so that detected boxes,
            never exactly the ground truth's, are crops the network has seen.
    """

    needs_boxes: ClassVar[bool] = True
    defaults: ClassVar[dict] = {"epochs": 12, "batch_size": 16}

    def __init__(self, *, num_keypoints: int = 17, in_chans: int = 3, img_size: int | Sequence[int] = 128,
                 crop: Sequence[int] = (64, 48), padding: float = 1.25, sigma: float = 1.5, net: str = "unet",
                 depth: int = 4, base: int = 16, width: float = 1.0, jitter: float = 0.1):
        super().__init__()
        from dcvkit.models.classify.base import pair

        self.num_keypoints, self.in_chans, self.img_size = num_keypoints, in_chans, pair(img_size)
        self.crop = (int(crop[0]), int(crop[1]))
        self.padding, self.sigma, self.jitter = float(padding), float(sigma), float(jitter)
        self.net = create_model(net, num_classes=num_keypoints, in_chans=in_chans, img_size=list(self.crop),
                                depth=depth, base=max(4, round(base * width)))

    @property
    def window_mass(self) -> float:
        """The share of a target's (normalised) mass in the 3x3 pixels about its centre."""
        return math.erf(1.5 / (self.sigma * math.sqrt(2))) ** 2

    @property
    def aspect(self) -> float:
        return self.crop[1] / self.crop[0]

    def regions(self, boxes: Sequence[Tensor]) -> list[Tensor]:
        return [crop_boxes(b.float(), self.aspect, self.padding) for b in boxes]

    def heatmaps(self, images: Tensor, regions: Sequence[Tensor]) -> Tensor:
        """(n, K, H, W) heatmap logits of every region of every image, in order (a softmax over each map's
        pixels gives the keypoint's distribution)."""
        crops = roi_align(images, [r.to(images) for r in regions], self.crop, 1.0, sampling_ratio=2, aligned=True)
        return self.net(crops)

    def loss(self, images: Tensor, boxes: list[Tensor], keypoints: list[Tensor], areas: list[Tensor],
             **_: object) -> dict[str, Tensor]:
        """KL divergence of each heatmap's softmax from its Gaussian target (normalised), averaged over the
        labelled keypoints inside their crops; on crops of boxes jittered by ``jitter``."""
        regions = self.regions(boxes)
        if self.training and self.jitter > 0:
            regions = [_jitter(r, self.jitter) for r in regions]
        if sum(len(r) for r in regions) == 0:
            zero = sum(p.sum() for p in self.parameters()) * 0.0
            return {"loss": zero, "heatmap_loss": zero.detach()}
        from dcvkit.losses.pose import heatmap_loss

        logits = self.heatmaps(images, regions)
        target, weight = gaussian_targets(torch.cat(keypoints).to(logits.device).float(),
                                          torch.cat(regions).to(logits.device).float(), self.crop, self.sigma)
        loss = heatmap_loss(logits, target, weight)
        return {"loss": loss, "heatmap_loss": loss.detach()}

    @torch.inference_mode()
    def detect_pose(self, images: Tensor, score_thresh: float = 0.0, nms_iou: float = 0.5, top_k: int = 100,
                    boxes: Sequence[Tensor] | None = None, box_scores: Sequence[Tensor] | None = None
                    ) -> list[PoseDetections]:
        """Keypoints of the people in ``boxes`` (per image (n, 4); default: each whole image is one person),
        scored by ``box_scores`` (default 1) times the mean peak of their keypoints; ``score_thresh`` drops
        people below it (``nms_iou`` belongs to the model that found the boxes)."""
        b, h, w = len(images), images.shape[-2], images.shape[-1]
        if boxes is None:
            boxes = [images.new_tensor([[0.0, 0.0, w, h]]) for _ in range(b)]
        boxes = [x.float().to(images.device) for x in boxes]
        scores = [torch.ones(len(x), device=images.device) if box_scores is None else s.float().to(images.device)
                  for x, s in zip(boxes, box_scores or boxes)]
        regions = self.regions(boxes)
        if sum(len(r) for r in regions):
            logits = self.heatmaps(images, regions).float()
            kp = decode_heatmaps(logits.flatten(2).softmax(-1).view_as(logits), torch.cat(regions))
            kp[..., 2] = (kp[..., 2] / self.window_mass).clamp(0, 1)
        else:
            kp = images.new_zeros(0, self.num_keypoints, 3)
        out, start = [], 0
        for bx, s in zip(boxes, scores):
            k = kp[start:start + len(bx)]
            start += len(bx)
            score = keypoint_score(s, k[..., 2])
            keep = (score >= score_thresh).nonzero().flatten()
            keep = keep[score[keep].argsort(descending=True)][:top_k]
            out.append(PoseDetections(bx[keep], score[keep], k[keep]))
        return out


def _jitter(regions: Tensor, amount: float) -> Tensor:
    """Regions scaled by 1 +- ``amount`` and shifted by up to ``amount`` of their size, at random."""
    c = (regions[:, :2] + regions[:, 2:]) / 2
    size = regions[:, 2:] - regions[:, :2]
    scale = 1 + (torch.rand(len(regions), 1, device=regions.device) * 2 - 1) * amount
    shift = (torch.rand(len(regions), 2, device=regions.device) * 2 - 1) * amount * size
    half = size * scale / 2
    return torch.cat([c + shift - half, c + shift + half], 1)


@register_model("pose")
def heatmap(num_classes: int = 1, num_keypoints: int = 17, in_chans: int = 3, img_size: int | Sequence[int] = 128,
            width: float = 1.0, **kwargs) -> HeatmapPose:
    """Top-down (SimpleBaseline): 64x48 crops of each person's box -> a U-Net -> a heatmap per keypoint.

    Sub-pixel peaks; needs boxes (the ground truth's, or another pose run's people)."""
    return HeatmapPose(num_keypoints=num_keypoints, in_chans=in_chans, img_size=img_size, width=width, **kwargs)


__all__ = ["HeatmapPose", "heatmap", "crop_boxes", "gaussian_targets", "decode_heatmaps"]
