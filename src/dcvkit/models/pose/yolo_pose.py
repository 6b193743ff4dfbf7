"""``yolo_pose``: the detection lineage's ``yolo`` (anchor-free stride-8 grid, centre sampling, CIoU +
objectness + IoU-aware class loss) with, per cell, K keypoints regressed as offsets from the cell's centre in
strides and K presence logits, from a branch of their own beside the box head (YOLO-pose, Maji et al. 2022,
on this project's small YOLO).

A positive cell learns its object's keypoints through the OKS loss (:func:`dcvkit.losses.pose.oks_loss`),
so a keypoint's error is weighed as the metric weighs it (by the object's size and the keypoint's sigma),
plus an L1 loss scaled by the object's size (:func:`dcvkit.losses.pose.scaled_l1_loss`), whose gradient
does not vanish for a keypoint far from its place as the OKS loss's does (measured with the keypoint
branch: validation AP 0.459 vs 0.395 at epoch 23 of 40; docs/results.md, issue 25).

Still one pass: each person's K keypoints are then refined from a 4x4 patch of a stride-4 map read around
each (RoI Align, an MLP shared by the keypoints plus an embedding of which keypoint it is), trained with
the same two losses (``refine=False`` leaves it out). Measured on the default figures: test OKS AP 0.704
vs 0.498 without, 2.2 vs 1.5 ms per image, 3.4x the training time (docs/results.md, issue 25)."""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcvkit.data.keypoints import COCO17_SIGMAS
from dcvkit.models.detect.targets import centre_assign
from dcvkit.models.detect.yolo import YOLO, ConvBNAct
from dcvkit.models.pose.base import PoseDetections
from dcvkit.models.registry import register_model


class YOLOPose(YOLO):
    """See the module docstring. ``num_keypoints`` and ``sigmas`` (OKS, per keypoint) describe the keypoint
    set; ``kpt_gain`` weighs the OKS loss against the detection loss, ``l1_gain`` the scaled L1 loss
    (:func:`~dcvkit.losses.pose.scaled_l1_loss`) beside it (0: the OKS loss alone)."""

    needs_boxes: ClassVar[bool] = False  # finds its own people
    # mosaics of four training images: test OKS AP 0.498 vs 0.444 without, on the default 4,000 figures
    # (docs/results.md, issue 25; a random affine beside them lowered it: 0.482)
    defaults: ClassVar[dict] = {"epochs": 40, "batch_size": 16, "mosaic": 0.5}

    def __init__(self, *, num_classes: int = 1, num_keypoints: int = 17, in_chans: int = 3,
                 img_size: int | Sequence[int] = 128, width: float = 1.0, radius: float = 1.5, box_gain: float = 5.0,
                 kpt_gain: float = 8.0, sigmas: Sequence[float] | None = None, kpt_channels: int = 64,
                 l1_gain: float = 4.0, refine: bool = True, fine_channels: int = 48):
        super().__init__(num_classes=num_classes, in_chans=in_chans, img_size=img_size, width=width, radius=radius,
                         box_gain=box_gain)
        self.num_keypoints, self.kpt_gain, self.l1_gain = num_keypoints, kpt_gain, l1_gain
        sig = list(sigmas) if sigmas is not None else (list(COCO17_SIGMAS) if num_keypoints == 17
                                                       else [0.0625] * num_keypoints)
        if len(sig) != num_keypoints:
            raise ValueError(f"yolo_pose: {len(sig)} sigmas for {num_keypoints} keypoints")
        self.register_buffer("sigmas", torch.tensor(sig, dtype=torch.float32), persistent=False)
        # The keypoints' own branch (YOLO-pose's separate head) on the neck's input: two 3x3 convolutions,
        # then 3K outputs per cell. Sharing the detection head's 1x1 convolution (48 channels for 51
        # numbers) was the first design: test OKS AP 0.402.
        neck = self.fuse_p8.conv.in_channels
        self.kpt_head = nn.Sequential(ConvBNAct(neck, kpt_channels, 3), ConvBNAct(kpt_channels, kpt_channels, 3),
                                      nn.Conv2d(kpt_channels, 3 * num_keypoints, 1))
        with torch.no_grad():  # keypoints start at the cell centre, present
            self.kpt_head[-1].weight.zero_()
            self.kpt_head[-1].bias.zero_()
        self.refine = refine
        if refine:
            # Refinement: a stride-4 map (the backbone's second stage plus the neck's features upsampled), a
            # 4x4 patch of it read around each cell's keypoint (RoI Align), an MLP -> a correction in pixels.
            # The cell regresses from 8 px away; the patch sees the keypoint's own neighbourhood.
            b = self.backbone.widths[1]
            self.fine_lateral = ConvBNAct(neck, b, 1)
            self.fine = ConvBNAct(b, fine_channels, 3)
            self.refine_mlp = nn.Sequential(nn.Linear(fine_channels * self.PATCH ** 2, 128), nn.SiLU(inplace=True))
            self.refine_kpt = nn.Embedding(num_keypoints, 128)
            self.refine_out = nn.Sequential(nn.Linear(128, 128), nn.SiLU(inplace=True), nn.Linear(128, 2))
            with torch.no_grad():  # start as the cell's own keypoints
                self.refine_out[-1].weight.zero_()
                self.refine_out[-1].bias.zero_()

    PATCH = 4             # the refinement's patch: PATCH x PATCH samples ...
    PATCH_SIDE = 16.0     # ... over this many pixels around the keypoint (one sample per stride-4 cell)

    def forward(self, images: Tensor) -> Tensor:
        """(N, in_chans, H, W) -> (N, 5 + C + 3K, H/8, W/8): yolo's outputs, then per keypoint x and y offsets
        from the cell centre (strides), then K presence logits (before refinement: :meth:`maps`)."""
        return self.maps(images)[0]

    def maps(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """:meth:`forward`'s grid and the stride-4 map the refinement reads (None without refinement)."""
        stem = self.backbone.p8
        f4 = stem[:2](images)
        p8 = stem[2:](f4)
        p16 = self.backbone.p16(p8)
        up = F.interpolate(self.lateral(p16), size=p8.shape[-2:], mode="nearest")
        x = torch.cat([p8, up], 1)
        out = torch.cat([self.head(self.fuse_p8(x)), self.kpt_head(x)], 1)
        if not self.refine:
            return out, None
        fine = f4 + F.interpolate(self.fine_lateral(x), size=f4.shape[-2:], mode="nearest")
        return out, self.fine(fine)

    def refined(self, fine: Tensor | None, img: Tensor, xy: Tensor) -> Tensor:
        """Keypoints ``xy`` (m, K, 2) pixels of people in images ``img`` (m,) moved by the refinement's
        correction (``xy`` itself without refinement). The patches sit where ``xy`` says (no gradient through
        the place, as in RoI heads)."""
        if fine is None or not len(xy):
            return xy
        from torchvision.ops import roi_align

        m, k = xy.shape[:2]
        c = xy.detach().reshape(-1, 2)
        h = self.PATCH_SIDE / 2
        rois = torch.cat([img.repeat_interleave(k)[:, None].to(c), c - h, c + h], 1)
        patch = roi_align(fine, rois, self.PATCH, spatial_scale=0.25,
                          sampling_ratio=1, aligned=True)
        hid = self.refine_mlp(patch.flatten(1)).reshape(m, k, -1) + self.refine_kpt.weight
        return xy + self.refine_out(hid) * (self.PATCH_SIDE / 4)

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
    def detect_pose(self, images: Tensor, score_thresh: float = 0.1, nms_iou: float = 0.5, top_k: int = 100,
                    **_: object) -> list[PoseDetections]:
        """People per image: cells scoring at least ``score_thresh``, NMS on their boxes, with their keypoints
        (boxes given are ignored: the model finds its own)."""
        from torchvision.ops import nms

        grid, fine = self.maps(images)
        boxes, obj, cls, xy, pres, _ = self._split_pose(grid)
        scores = (torch.sigmoid(obj)[..., None] * torch.sigmoid(cls)).amax(-1)
        out = []
        for i, (b, s, k, p) in enumerate(zip(boxes, scores, xy, pres)):
            keep = (s >= score_thresh).nonzero().flatten()
            keep = keep[nms(b[keep], s[keep], nms_iou)][:top_k]
            k = self.refined(fine, torch.full_like(keep, i), k[keep])
            kp = torch.cat([k, torch.sigmoid(p[keep])[..., None]], -1)
            out.append(PoseDetections(b[keep], s[keep], kp))
        return out

    def loss(self, images: Tensor, boxes: list[Tensor], keypoints: list[Tensor], areas: list[Tensor],
             **_: object) -> dict[str, Tensor]:
        """yolo's detection loss, plus on every positive cell the OKS loss of its keypoints against its
        object's and the presence loss. Shape: per image boxes (n, 4), keypoints (n, K, 3), areas (n,)."""
        from dcvkit.losses.detection import yolo_loss
        from dcvkit.losses.pose import oks_loss, presence_loss, scaled_l1_loss

        grid, fine = self.maps(images)
        pred, obj, cls, xy, pres, centres = self._split_pose(grid)
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
            coarse = xy[img, cell]
            kpt = oks_loss(coarse, tk, ta, self.sigmas)
            l1 = scaled_l1_loss(coarse, tk, ta) if self.l1_gain else kpt.detach() * 0.0
            if fine is not None:  # the refined keypoints learn from the same two losses
                fine_xy = self.refined(fine, img, coarse)
                kpt = kpt + oks_loss(fine_xy, tk, ta, self.sigmas)
                l1 = l1 + (scaled_l1_loss(fine_xy, tk, ta) if self.l1_gain else 0.0)
            vis = presence_loss(pres[img, cell], tk)
        else:
            kpt = vis = l1 = xy.sum() * 0.0
        out["loss"] = out["loss"] + self.kpt_gain * kpt + self.l1_gain * l1 + vis
        out.update(kpt_loss=kpt.detach(), l1_loss=l1.detach(), presence_loss=vis.detach())
        return out


@register_model("pose")
def yolo_pose(num_classes: int = 1, num_keypoints: int = 17, in_chans: int = 3, img_size: int | Sequence[int] = 128,
              width: float = 1.0, **kwargs) -> YOLOPose:
    """YOLO-pose: the small yolo with a keypoint branch (K keypoints per cell) and an OKS loss, one pass."""
    return YOLOPose(num_classes=num_classes, num_keypoints=num_keypoints, in_chans=in_chans, img_size=img_size,
                    width=width, **kwargs)


__all__ = ["YOLOPose", "PoseDetections", "yolo_pose"]
