"""Masks and boxes follow the image under every geometric op: draw a box around a known object, augment the
image, its mask and its box together, and check the object is still inside the box and under the mask."""

from __future__ import annotations

import pytest
import torch

from dcvkit.augment import AugmentConfig, AugmentParams, Augmenter

H, W = 48, 64
BOX = (20.0, 14.0, 45.0, 31.0)  # x1, y1, x2, y2 in pixel edges: columns 20..44, rows 14..30


def scene(n: int) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """n copies of a dark image holding one bright rectangle, its mask (label 1) and its box."""
    img = torch.full((n, 3, H, W), 10, dtype=torch.uint8)
    img[:, :, 14:31, 20:45] = 240
    mask = torch.zeros(n, H, W, dtype=torch.long)
    mask[:, 14:31, 20:45] = 1
    return img, mask, [torch.tensor([BOX]) for _ in range(n)]


def bright_bbox(img: torch.Tensor) -> tuple[float, float, float, float]:
    on = img.mean(0) > 125
    rows, cols = on.any(1).nonzero().flatten(), on.any(0).nonzero().flatten()
    return float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)


OPS = {
    "rotation": dict(rotation_range=40),
    "shift": dict(width_shift_range=0.4, height_shift_range=0.4),
    "shear": dict(shear_range=30),
    "zoom": dict(zoom_range=[0.6, 1.5]),
    "horizontal_flip": dict(horizontal_flip=True),
    "vertical_flip": dict(vertical_flip=True),
    "random_crop": dict(random_crop=[40, 40], crop_padding=6),
    "resize": dict(resize=[24, 40]),
    "everything": dict(rotation_range=25, width_shift_range=0.2, height_shift_range=0.2, shear_range=15,
                       zoom_range=0.3, horizontal_flip=True, vertical_flip=True, random_crop=[44, 60],
                       crop_padding=4, brightness_range=[0.9, 1.1]),
}
EXACT = {"shift", "horizontal_flip", "vertical_flip", "random_crop", "resize"}  # axis-aligned: tight boxes


@pytest.mark.parametrize("op", OPS)
def test_object_stays_inside_its_box_and_under_its_mask(op):
    n = 24
    img, mask, boxes = scene(n)
    cfg = AugmentConfig(**OPS[op], fill_mode="constant")
    out = Augmenter(cfg, seed=7).augment(img, masks=mask, boxes=boxes)
    assert out.images.shape[0] == n and out.masks.shape == out.images.shape[:1] + out.images.shape[2:]
    kept = 0
    for i in range(n):
        on = out.images[i].mean(0) > 125
        if not on.any():
            assert len(out.boxes[i]) == 0, (op, i)  # the object left the image: so did its box
            continue
        m = out.masks[i] == 1
        iou = (m & on).sum() / (m | on).sum()
        assert iou > 0.8, (op, i, float(iou))  # the mask moved with the object
        if len(out.boxes[i]) == 0:  # dropped: only a sliver of the object is left
            assert on.sum() < 0.3 * 425, (op, i)
            continue
        kept += 1
        x1, y1, x2, y2 = out.boxes[i][0].tolist()
        bx1, by1, bx2, by2 = bright_bbox(out.images[i])
        assert x1 - 1 <= bx1 and y1 - 1 <= by1 and bx2 <= x2 + 1 and by2 <= y2 + 1, (op, i, out.boxes[i], (bx1, by1, bx2, by2))
        if op in EXACT:
            assert max(abs(x1 - bx1), abs(y1 - by1), abs(x2 - bx2), abs(y2 - by2)) <= 1.01, (op, i)
        oh, ow = out.images.shape[-2:]
        assert 0 <= x1 < x2 <= ow and 0 <= y1 < y2 <= oh
        assert out.box_index[i].tolist() == [0]
    assert kept >= n // 2, op


def test_boxes_that_leave_the_image_are_dropped_with_their_index():
    img, mask, _ = scene(1)
    boxes = [torch.tensor([BOX, (0.0, 0.0, 6.0, 5.0), (50.0, 36.0, 64.0, 48.0)])]
    # shift the content 30 px left: the small box at the left edge leaves the image; the object's box keeps
    # 15 of its 25 columns (more than the 0.25 visibility threshold); the bottom-right box moves whole
    out = Augmenter(AugmentConfig(width_shift_range=0.5)).augment(img, mask, boxes, params=AugmentParams.fixed(ty=30))
    assert out.box_index[0].tolist() == [0, 2]
    assert torch.allclose(out.boxes[0], torch.tensor([[0.0, 14.0, 15.0, 31.0], [20.0, 36.0, 34.0, 48.0]]), atol=1e-4)
    # further: only 3 of the object's columns stay (< 0.25 of it) and it is dropped too
    out = Augmenter(AugmentConfig(width_shift_range=0.9)).augment(img, mask, boxes, params=AugmentParams.fixed(ty=42))
    assert out.box_index[0].tolist() == [2] and torch.allclose(out.boxes[0], torch.tensor([[8.0, 36.0, 22.0, 48.0]]))


def test_clips_get_one_transform_for_all_their_frames():
    img, _, _ = scene(4)
    clips = torch.stack([img, img, img], 1)  # (4, T=3, 3, H, W)
    out = Augmenter(AugmentConfig(rotation_range=30, horizontal_flip=True, zoom_range=0.2), seed=1).augment(clips)
    assert out.images.shape == clips.shape
    assert torch.equal(out.images[:, 0], out.images[:, 1]) and torch.equal(out.images[:, 0], out.images[:, 2])
    assert not torch.equal(out.images[0, 0], out.images[1, 0])
