"""A horizontal flip moves each keypoint with the image and swaps left and right through the flip index."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcvkit.augment import functional as aug
from dcvkit.data.keypoints import COCO17, COCO17_FLIP, flip_keypoints


@pytest.mark.data
def test_flipped_keypoints_land_on_the_same_pixels_with_left_and_right_swapped(fashion_mnist):
    from dcvkit.data import named
    from dcvkit.data.figures import figure_image

    train, _ = named.load("fashion-mnist")
    image, ann = figure_image(train, seed=0, index=3)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    k = torch.from_numpy(ann.keypoints)
    flipped = aug.flip(x, torch.tensor([True]), torch.tensor([False]))
    (fk,) = aug.flip_keypoints([k], torch.tensor([True]), image.shape[1], COCO17_FLIP)
    np.testing.assert_allclose(fk.numpy(), flip_keypoints(ann.keypoints, image.shape[1], COCO17_FLIP))
    lw, rw = COCO17.index("left_wrist"), COCO17.index("right_wrist")
    for person in range(len(k)):
        for j in range(17):
            x0, y0, v = k[person, j].tolist()
            if v == 0:
                continue
            mirror = COCO17_FLIP[j]
            xf, yf, vf = fk[person, mirror].tolist()  # keypoint j of the original is keypoint mirror(j) now
            assert vf == v and yf == y0 and xf == pytest.approx(image.shape[1] - x0)
            assert (flipped[0, :, int(yf), int(xf)] == x[0, :, int(y0), int(x0)]).all()  # the same pixel
        if k[person, rw, 2] > 0:  # the right wrist's position, mirrored, is now the left wrist's
            assert fk[person, lw, 0] == pytest.approx(image.shape[1] - k[person, rw, 0].item())


def test_images_not_flipped_keep_their_keypoints():
    k = torch.rand(2, 17, 3)
    (out,) = aug.flip_keypoints([k], torch.tensor([False]), 100, COCO17_FLIP)
    assert torch.equal(out, k)
