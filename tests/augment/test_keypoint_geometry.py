"""Mosaic and random affine for people (issue 25): keypoints land on the pixels they marked, boxes and areas
follow, and a keypoint pushed out of the image becomes unlabelled."""

import torch

from dcvkit.augment import functional as aug


def marked_batch(n: int = 4, size: int = 64, k: int = 5, seed: int = 0):
    """Images of zeros with each keypoint marked by a 3x3 square of a value of its own (image i, keypoint j),
    the keypoints on distinct cells of an 8-pixel grid (so the squares never touch)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, size, size)
    boxes, kps, areas = [], [], []
    cells = size // 8 - 1
    for i in range(n):
        pick = torch.randperm(cells * cells, generator=g)[:k]
        xy = torch.stack([pick % cells, pick // cells], 1).float() * 8 + 8.5  # pixel centres
        for j, (x, y) in enumerate(xy.tolist()):
            images[i, 0, int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 1 + i * k + j
        kps.append(torch.cat([xy, torch.full((k, 1), 2.0)], 1)[None])
        lo, hi = xy.min(0).values - 0.5, xy.max(0).values + 0.5
        boxes.append(torch.cat([lo, hi])[None])
        areas.append(((hi - lo).prod())[None])
    return images, boxes, kps, areas


def test_mosaic_moves_keypoints_with_their_tiles():
    images, boxes, kps, areas = marked_batch()
    n, k = len(images), kps[0].shape[1]
    out, ob, ok, oa = aug.mosaic_keypoints(images, boxes, kps, areas, torch.ones(n, dtype=torch.bool),
                                           torch.Generator().manual_seed(1), min_visibility=0.0, fill=0)
    checked = cut = 0
    for i in range(n):
        assert len(ob[i]) == len(ok[i]) == len(oa[i])
        for person in ok[i]:
            for x, y, v in person.tolist():
                if v == 0:
                    cut += 1
                    assert x == y == 0
                    continue
                value = out[i, 0, int(y), int(x)].item()
                assert value > 0, (i, x, y)  # a marked pixel, moved with its keypoint
                checked += 1
        for b, person in zip(ob[i], ok[i]):  # labelled keypoints lie in their (clipped) box
            vis = person[person[:, 2] > 0]
            assert ((vis[:, 0] >= b[0]) & (vis[:, 0] <= b[2]) & (vis[:, 1] >= b[1]) & (vis[:, 1] <= b[3])).all()
    assert checked > k  # some people came through
    # the areas are the people's own (OKS's scale is the whole person's)
    assert all(float(a) in {float(x) for x in torch.cat(areas)} for a in torch.cat(oa))


def test_affine_moves_keypoints_with_the_image_and_scales_areas():
    images, boxes, kps, areas = marked_batch(n=3, size=96)
    out, ob, ok, oa = aug.random_affine_keypoints(images, boxes, kps, areas, 0.5, 0.1,
                                                  torch.Generator().manual_seed(3), fill=0)
    moved = 0
    for i in range(len(images)):
        if not len(ok[i]):
            continue
        assert oa[i][0] > 0
        for j, (x, y, v) in enumerate(ok[i][0].tolist()):
            if v == 0:
                assert x == y == 0
                continue
            # the pixel under the moved keypoint is inside its (resampled) square: mostly its value
            target = 1 + i * 5 + j
            assert out[i, 0, int(y), int(x)].item() > 0.5 * target, (i, j, x, y)
            moved += 1
        scale = ((ob[i][0][2] - ob[i][0][0]) / (boxes[i][0][2] - boxes[i][0][0])).item()
        if 0.05 < ob[i][0][0] and ob[i][0][2] < 95.9 and 0.05 < ob[i][0][1] and ob[i][0][3] < 95.9:  # not clipped
            assert abs(oa[i][0].item() / areas[i][0].item() - scale ** 2) < 1e-6
    assert moved > 0


def test_affine_identity_keeps_keypoints():
    images, boxes, kps, areas = marked_batch(n=2)
    out, ob, ok, oa = aug.random_affine_keypoints(images, boxes, kps, areas, 0.0, 0.0, torch.Generator(), fill=0)
    assert torch.allclose(out, images)
    for a, b in zip(ok, kps):
        assert torch.allclose(a, b, atol=1e-6)
    for a, b in zip(oa, areas):
        assert torch.allclose(a, b)


def test_detection_mosaic_unchanged_by_the_shared_plan():
    """The detection mosaic draws the same tiles and windows as before the pose variant shared its plan:
    the same generator state gives the same images and boxes from both."""
    images, boxes, kps, areas = marked_batch(n=4)
    labels = [torch.zeros(1, dtype=torch.long) for _ in boxes]
    apply = torch.tensor([True, False, True, True])
    a = aug.mosaic(images, boxes, labels, apply, torch.Generator().manual_seed(5), min_visibility=0.0, fill=0)
    b = aug.mosaic_keypoints(images, boxes, kps, areas, apply, torch.Generator().manual_seed(5), min_visibility=0.0,
                             fill=0)
    assert torch.equal(a[0], b[0])
    assert all(torch.equal(x, y) for x, y in zip(a[1], b[1]))
