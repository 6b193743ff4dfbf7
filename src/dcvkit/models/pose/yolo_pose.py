"""``yolo_pose``: the detection lineage's ``yolo`` (anchor-free stride-8 grid, centre sampling, CIoU +
objectness + IoU-aware class loss) with, per cell, K keypoints regressed as offsets from the cell's centre in
strides and K presence logits (YOLO-pose, Maji et al. 2022, on this project's small YOLO). A positive cell
learns its object's keypoints through the OKS loss (:func:`dcvkit.losses.pose.oks_loss`), so a keypoint's
error is weighed as the metric weighs it: by the object's size and the keypoint's sigma."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from dcvkit.data.keypoints import COCO17_SIGMAS
from dcvkit.models.detect.targets import centre_assign
from dcvkit.models.detect.yolo import YOLO
from dcvkit.models.registry import register_model


@dataclass
class PoseDetections:
    """One image's people, best first: boxes (n, 4) x1 y1 x2 y2, scores (n,), keypoints (n, K, 3) x, y and
    presence probability."""

    boxes: Tensor
    scores: Tensor
    keypoints: Tensor

    def __len__(self) -> int:
        return len(self.scores)


class YOLOPose(YOLO):
    """See the module docstring. ``num_keypoints`` and ``sigmas`` (OKS, per keypoint) describe the keypoint
    set; ``kpt_gain`` weighs the OKS loss against the detection loss."""

    def __init__(self, *, num_classes: int = 1, num_keypoints: int = 17, in_chans: int = 3,
                 img_size: int | Sequence[int] = 128, width: float = 1.0, radius: float = 1.5, box_gain: float = 5.0,
                 kpt_gain: float = 8.0, sigmas: Sequence[float] | None = None):
        super().__init__(num_classes=num_classes, in_chans=in_chans, img_size=img_size, width=width, radius=radius,
                         box_gain=box_gain)
        self.num_keypoints, self.kpt_gain = num_keypoints, kpt_gain
        sig = list(sigmas) if sigmas is not None else (list(COCO17_SIGMAS) if num_keypoints == 17
                                                       else [0.0625] * num_keypoints)
        if len(sig) != num_keypoints:
            raise ValueError(f"yolo_pose: {len(sig)} sigmas for {num_keypoints} keypoints")
        self.register_buffer("sigmas", torch.tensor(sig, dtype=torch.float32), persistent=False)
        old = self.head
        self.head = nn.Conv2d(old.in_channels, old.out_channels + 3 * num_keypoints, 1)
        with torch.no_grad():  # the detection channels start as yolo's; keypoints at the cell centre, present
            self.head.weight.zero_()
            self.head.bias.zero_()
            self.head.bias[:old.out_channels] = old.bias

    def _split_pose(self, out: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        n, _, h, w = out.shape
        d = 5 + self.num_classes
        boxes, obj, cls, centres = self._split(out[:, :d])  # yolo's own channels
        flat = out[:, d:].flatten(2).transpose(1, 2).float()  # (N, h*w, 3K)
        k = self.num_keypoints
        xy = centres[None, :, None, :] + flat[..., :2 * k].reshape(n, h * w, k, 2) * self.stride
        return boxes, obj, cls, xy, flat[..., 2 * k:], centres

    def decode(self, out: Tensor) -> tuple[Tensor, Tensor]:
        boxes, obj, cls, _, _, _ = self._split_pose(out)
        return boxes, torch.sigmoid(obj)[..., None] * torch.sigmoid(cls)

    @torch.inference_mode()
    def detect_pose(self, images: Tensor, score_thresh: float = 0.1, nms_iou: float = 0.5, top_k: int = 100
                    ) -> list[PoseDetections]:
        """People per image: cells scoring at least ``score_thresh``, NMS on their boxes, with their keypoints."""
        from torchvision.ops import nms

        boxes, obj, cls, xy, pres, _ = self._split_pose(self(images))
        scores = (torch.sigmoid(obj)[..., None] * torch.sigmoid(cls)).amax(-1)
        out = []
        for b, s, k, p in zip(boxes, scores, xy, pres):
            keep = (s >= score_thresh).nonzero().flatten()
            keep = keep[nms(b[keep], s[keep], nms_iou)][:top_k]
            kp = torch.cat([k[keep], torch.sigmoid(p[keep])[..., None]], -1)
            out.append(PoseDetections(b[keep], s[keep], kp))
        return out

    def loss(self, images: Tensor, boxes: list[Tensor], keypoints: list[Tensor], areas: list[Tensor],
             **_: object) -> dict[str, Tensor]:
        """yolo's detection loss, plus on every positive cell the OKS loss of its keypoints against its
        object's and the presence loss. Shape: per image boxes (n, 4), keypoints (n, K, 3), areas (n,)."""
        from dcvkit.losses.detection import yolo_loss
        from dcvkit.losses.pose import oks_loss, presence_loss

        pred, obj, cls, xy, pres, centres = self._split_pose(self(images))
        matched = torch.stack([centre_assign(centres, b.to(centres), self.stride, self.radius) for b in boxes])
        labels = [torch.zeros(len(b), dtype=torch.long, device=pred.device) for b in boxes]
        out = yolo_loss(pred, obj, cls, matched, [b.to(pred) for b in boxes], labels, self.box_gain)
        pos = matched >= 0
        if pos.any():
            img, cell = pos.nonzero(as_tuple=True)
            counts = torch.tensor([len(b) for b in boxes], device=img.device)
            flat = (torch.cumsum(counts, 0) - counts)[img] + matched[img, cell]
            tk = torch.cat(keypoints).to(xy)[flat]
            ta = torch.cat(areas).to(xy)[flat]
            kpt = oks_loss(xy[img, cell], tk, ta, self.sigmas)
            vis = presence_loss(pres[img, cell], tk)
        else:
            kpt = vis = xy.sum() * 0.0
        out["loss"] = out["loss"] + self.kpt_gain * kpt + vis
        out.update(kpt_loss=kpt.detach(), presence_loss=vis.detach())
        return out


@register_model("pose")
def yolo_pose(num_classes: int = 1, num_keypoints: int = 17, in_chans: int = 3, img_size: int | Sequence[int] = 128,
              width: float = 1.0, **kwargs) -> YOLOPose:
    """YOLO-pose: the small yolo with K keypoints per cell and an OKS loss, one pass (~0.31M params + head)."""
    return YOLOPose(num_classes=num_classes, num_keypoints=num_keypoints, in_chans=in_chans, img_size=img_size,
                    width=width, **kwargs)


__all__ = ["YOLOPose", "PoseDetections", "yolo_pose"]
