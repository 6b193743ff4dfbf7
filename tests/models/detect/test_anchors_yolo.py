"""Hand-computed values for Faster R-CNN's anchors and YOLO's target assignment and losses."""

from __future__ import annotations


import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from dcvkit.losses.detection import aligned_iou, yolo_v1_loss
from dcvkit.models import create_model
from dcvkit.models.detect.faster_rcnn import anchor_generator
from dcvkit.models.detect.targets import centre_assign, yolo_v1_assign


def test_rpn_anchors_by_hand():
    """Size 32, ratios h/w 0.5, 1, 2 on a 2x2 feature map of a 16x16 image (stride 8): at each position
    (x * 8, y * 8), row by row, the three anchors w x h = 45.25 x 22.63 (rounded to 46 x 22),
    32 x 32 and 22 x 46 centred there."""
    gen = anchor_generator(sizes=(32,), ratios=(0.5, 1.0, 2.0))
    assert gen.num_anchors_per_location() == [3]
    anchors = gen(ImageList(torch.zeros(1, 3, 16, 16), [(16, 16)]), [torch.zeros(1, 4, 2, 2)])[0]
    base = torch.tensor([[-23.0, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23]])
    expected = torch.cat([base + torch.tensor([x, y, x, y]) for y in (0.0, 8.0) for x in (0.0, 8.0)])
    assert anchors.shape == (12, 4)
    assert torch.equal(anchors, expected)
    # position (x=1, y=0): shifted by 8 pixels in x
    assert anchors[3:6].tolist() == [[-15.0, -11, 31, 11], [-8, -16, 24, 16], [-3, -23, 19, 23]]


def test_faster_rcnn_rpn_covers_every_position():
    m = create_model("faster_rcnn", num_classes=3, img_size=64, backbone="cnn_tiny")  # stride 4: 16 x 16 cells
    assert m.rpn.anchor_generator.num_anchors_per_location() == [9]  # 3 sizes x 3 ratios
    feats = m.backbone.forward_features(torch.zeros(1, 3, 64, 64))
    obj, deltas = m.rpn.head([feats])
    assert obj[0].shape == (1, 9, 16, 16) and deltas[0].shape == (1, 36, 16, 16)
    # Fast R-CNN's heads, unchanged: the same class, the same modules
    f = create_model("fast_rcnn", num_classes=3, img_size=64, backbone="cnn_tiny")
    assert set(f.state_dict()) < set(m.state_dict())
    assert {k.split(".")[0] for k in set(m.state_dict()) - set(f.state_dict())} == {"rpn"}


def test_centre_assignment_by_hand():
    """4x4 grid, stride 8: cell centres at 4, 12, 20, 28. Box A (2, 2, 22, 22), centre (12, 12): cells whose
    centres are inside it and within 1.5 strides (12 px) of its centre: x, y in {4, 12, 20} -> 9 cells.
    Box B (25, 25, 31, 31): only cell (3, 3). Box C (0, 0, 32, 32): centre (16, 16), cells x, y in
    {12, 20}, all inside A too: A is smaller and keeps them."""
    ys, xs = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    centres = (torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * 8
    a, b = [2.0, 2, 22, 22], [25.0, 25, 31, 31]
    got = centre_assign(centres, torch.tensor([a, b]), stride=8, radius=1.5)
    expected = torch.full((16,), -1)
    expected[[0, 1, 2, 4, 5, 6, 8, 9, 10]] = 0
    expected[15] = 1
    assert torch.equal(got, expected)
    got = centre_assign(centres, torch.tensor([a, b, [0.0, 0, 32, 32]]), stride=8, radius=1.5)
    assert torch.equal(got, expected)
    # a box smaller than a cell still gets the cell nearest its centre
    tiny = centre_assign(centres, torch.tensor([[13.0, 13, 15, 15]]), stride=8)
    assert tiny.tolist() == [-1] * 5 + [0] + [-1] * 10
    assert (centre_assign(centres, torch.zeros(0, 4), 8) == -1).all()


def test_aligned_iou():
    a = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 2, 2]])
    b = torch.tensor([[0.0, 0, 10, 20], [5, 0, 15, 10], [3, 3, 4, 4]])
    assert torch.allclose(aligned_iou(a, b), torch.tensor([0.5, 1 / 3, 0.0]))


def test_yolo_v1_assignment_and_loss_by_hand():
    """S = 2 on a 32x32 image (16-px cells), B = 2. The object (4, 4, 12, 12), class 1, has its centre
    (8, 8) in cell (0, 0): x = y = 0.5 in the cell, sqrt(w / W) = sqrt(h / H) = 0.5. Of the cell's two
    predicted boxes, (0, 0, 8, 8) has IoU 16 / 112 = 1/7 and (4, 4, 12, 12) IoU 1: predictor 1 is
    responsible, with confidence target 1."""
    pred_boxes = torch.zeros(2, 2, 2, 4)
    pred_boxes[..., 2:] = 1.0
    pred_boxes[0, 0, 0] = torch.tensor([0.0, 0, 8, 8])
    pred_boxes[0, 0, 1] = torch.tensor([4.0, 4, 12, 12])
    t = yolo_v1_assign(torch.tensor([[4.0, 4, 12, 12]]), torch.tensor([1]), pred_boxes, (32, 32))
    assert t["responsible"].nonzero().tolist() == [[0, 0, 1]]
    assert t["box"][0, 0, 1].tolist() == [0.5, 0.5, 0.5, 0.5]
    assert t["iou"][0, 0, 1].item() == pytest.approx(1.0)
    assert t["has_object"].nonzero().tolist() == [[0, 0]] and t["classes"][0, 0].item() == 1
    other = yolo_v1_assign(torch.tensor([[4.0, 4, 12, 12]]), torch.tensor([1]),
                           torch.tensor([0.0, 0, 8, 8]).expand(2, 2, 2, 4).clone(), (32, 32))
    assert other["iou"][0, 0, 0].item() == pytest.approx(1 / 7)
    # predictions: the responsible box exactly right, every confidence 0.5, class probabilities 0.5 / 0.5.
    xywh = torch.full((1, 2, 2, 2, 4), 0.5)
    conf = torch.full((1, 2, 2, 2), 0.5)
    probs = torch.full((1, 2, 2, 2), 0.5)
    out = yolo_v1_loss(xywh, conf, probs, [t], lambda_coord=5.0, lambda_noobj=0.5)
    # coord 0; object (0.5 - 1)^2 = 0.25; no-object 7 boxes * 0.25 * 0.5 = 0.875; classes 0.25 + 0.25 = 0.5
    assert out["box_loss"].item() == pytest.approx(0.0)
    assert out["loss"].item() == pytest.approx(0.25 + 0.875 + 0.5)
    xywh[0, 0, 0, 1, 0] = 0.6  # x off by 0.1: + lambda_coord * 0.01
    assert yolo_v1_loss(xywh, conf, probs, [t])["loss"].item() == pytest.approx(1.625 + 0.05)
    # a second object in the same cell is left out (one class per cell)
    two = yolo_v1_assign(torch.tensor([[4.0, 4, 12, 12], [6.0, 6, 10, 10]]), torch.tensor([1, 0]), pred_boxes, (32, 32))
    assert two["responsible"].sum() == 1 and two["classes"][0, 0].item() == 1


@pytest.mark.parametrize("name", ["yolo", "yolo_v1"])
def test_fused_yolo_predicts_the_same(name):
    torch.manual_seed(0)
    m = create_model(name, num_classes=3, img_size=64)
    x = torch.randn(2, 3, 64, 64)
    m.train()
    for _ in range(2):  # move the batch-norm statistics away from their initial values
        m(x)
    torch.nn.init.normal_(m.head.weight if name == "yolo" else m.head[-1].weight, std=0.1)
    m.eval()
    boxes, scores = m.predict(x)
    fused_boxes, fused_scores = m.fuse().predict(x)
    assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in m.modules())
    assert torch.allclose(boxes, fused_boxes, atol=1e-4) and torch.allclose(scores, fused_scores, atol=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_mosaic_moves_boxes_with_their_pixels(seed):
    """Image 0 is all 10 with one box over it all (class 0); image 1 all 20 with a box (2, 2, 6, 6) (class 1).
    After a mosaic every kept box covers pixels of its own image, inside the window, with >= 60% of its
    area, and images not picked stay as they were."""
    from dcvkit.augment.functional import mosaic

    images = torch.stack([torch.full((1, 8, 8), 10, dtype=torch.uint8), torch.full((1, 8, 8), 20, dtype=torch.uint8)])
    boxes = [torch.tensor([[0.0, 0, 8, 8]]), torch.tensor([[2.0, 2, 6, 6]])]
    labels = [torch.tensor([0]), torch.tensor([1])]
    out, ob, ol = mosaic(images, boxes, labels, torch.tensor([True, False]), torch.Generator().manual_seed(seed))
    assert torch.equal(out[1], images[1]) and torch.equal(ob[1], boxes[1])
    assert set(out[0].unique().tolist()) <= {10, 20} and len(ob[0]) == len(ol[0])
    for b, lab in zip(ob[0], ol[0]):
        x1, y1, x2, y2 = b.round().long().tolist()
        assert 0 <= x1 < x2 <= 8 and 0 <= y1 < y2 <= 8
        assert (out[0, :, y1:y2, x1:x2] == (10 if lab == 0 else 20)).all()
        assert (x2 - x1) * (y2 - y1) >= 0.6 * (64 if lab == 0 else 16)


def test_yolo_v1_paper_head_has_the_same_output():
    """The paper's dense head and the default convolutional one give the same S x S x (5B + C) output."""
    x = torch.randn(2, 3, 64, 64)
    outs = [create_model("yolo_v1", num_classes=3, img_size=64, head=h)(x) for h in ("conv", "dense")]
    assert outs[0].shape == outs[1].shape == (2, 4, 4, 5 * 2 + 3)
    with pytest.raises(Exception, match="unknown head"):
        create_model("yolo_v1", head="fc")


def test_task_aligned_assignment_by_hand():
    """Two objects, five cells: each takes its top-k aligned cells among those whose centres lie in its box;
    the small object with no centre inside takes the nearest cell; a cell in both goes to the better IoU."""
    from dcvkit.models.detect.targets import task_aligned_assign

    centres = torch.tensor([[5.0, 5], [15, 5], [25, 5], [35, 5], [60, 60]])
    gt = torch.tensor([[0.0, 0, 30, 10], [58, 58, 59, 59]])
    labels = torch.tensor([0, 1])
    pred = torch.tensor([[0.0, 0, 30, 10], [0, 0, 20, 10], [20, 0, 30, 10], [30, 0, 40, 10], [50, 50, 70, 70]])
    scores = torch.full((5, 2), 0.5)
    matched = task_aligned_assign(pred, scores, centres, gt, labels, topk=2)
    # cells 0-2 have centres inside object 0: the two best aligned (IoU 1 and 2/3) win; cell 3 is outside;
    # object 1 (1 px) contains no centre: the nearest, cell 4
    assert matched.tolist() == [0, 0, -1, -1, 1]
    assert (task_aligned_assign(pred, scores, centres, gt[:0], labels[:0]) == -1).all()


def test_yolo_n_predicts_on_three_levels_and_learns():
    torch.manual_seed(0)
    m = create_model("yolo_n", num_classes=3, img_size=[64, 96])
    x = torch.rand(2, 3, 64, 96)
    boxes, scores = m.eval().predict(x)
    assert boxes.shape == (2, 8 * 12 + 4 * 6 + 2 * 3, 4) and scores.shape == (2, 126, 3)
    m.train()
    gt, lab = [torch.tensor([[10.0, 10, 30, 40], [40, 5, 90, 60]])] * 2, [torch.tensor([0, 2])] * 2
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(15):
        out = m.loss(x, gt, lab)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"]))
    assert losses[-1] < 0.7 * losses[0], losses


def test_random_affine_moves_boxes_with_their_pixels():
    from dcvkit.augment.functional import random_affine

    images = torch.zeros(4, 1, 40, 40, dtype=torch.uint8)
    images[:, :, 10:20, 12:30] = 200
    boxes, labels = [torch.tensor([[12.0, 10, 30, 20]])] * 4, [torch.tensor([3])] * 4
    out, ob, ol = random_affine(images, boxes, labels, 0.4, 0.1, torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == images.shape
    for img, b, lab in zip(out, ob, ol):
        assert len(b) == len(lab) == 1 and lab.item() == 3
        x1, y1, x2, y2 = b[0].tolist()
        inner = img[0, int(y1) + 1:int(y2) - 1, int(x1) + 1:int(x2) - 1]
        assert inner.float().mean() > 150  # the box still frames the bright rectangle
        assert img[0, :max(0, int(y1) - 2)].float().mean() < 120  # grey fill or background outside
