"""The OKS loss is one minus COCO's OKS term per labelled keypoint; the presence loss is a BCE; the scaled L1
loss keeps a gradient where the OKS loss has none."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dcvkit.data.keypoints import COCO17_SIGMAS
from dcvkit.losses.pose import oks_loss, presence_loss
from dcvkit.metrics.pose import oks


def test_oks_loss_is_one_minus_the_metric():
    rng = np.random.default_rng(0)
    target = np.concatenate([rng.uniform(0, 100, (3, 17, 2)), rng.choice([0, 1, 2], (3, 17, 1))], -1)
    target[0, :, 2] = 2  # every object has labelled keypoints
    target[1, 0, 2] = 2
    pred = target[..., :2] + rng.normal(0, 3, (3, 17, 2))
    areas = np.array([900.0, 2500.0, 400.0])
    sigmas = torch.tensor(COCO17_SIGMAS, dtype=torch.float64)
    loss = oks_loss(torch.tensor(pred), torch.tensor(target), torch.tensor(areas), sigmas)
    expected = np.mean([1 - oks(t, a, p, COCO17_SIGMAS) for t, a, p in zip(target, areas, pred)])
    assert float(loss) == pytest.approx(expected, rel=1e-9)


def test_oks_loss_by_hand_and_its_edges():
    t = torch.zeros(1, 17, 3)
    t[0, :, 2] = 2
    p = t[..., :2].clone()
    s = torch.tensor(COCO17_SIGMAS, dtype=torch.float64)
    assert float(oks_loss(p, t, torch.tensor([100.0]), s)) == 0.0  # exact: no loss
    p[0, 0, 0] = 0.1 * 10  # the nose off by 0.1 sqrt(area)
    expected = (1 - math.exp(-0.01 / (2 * (2 * 0.026) ** 2))) / 17
    assert float(oks_loss(p, t, torch.tensor([100.0]), s)) == pytest.approx(expected, rel=1e-6)
    t[0, 0, 2] = 0  # an unlabelled keypoint costs nothing
    assert float(oks_loss(p, t, torch.tensor([100.0]), s)) == 0.0
    t[..., 2] = 0  # an object with no labelled keypoint is left out
    assert float(oks_loss(p, t, torch.tensor([100.0]), s)) == 0.0


def test_presence_loss():
    t = torch.zeros(1, 3, 3)
    t[0, :, 2] = torch.tensor([2.0, 1.0, 0.0])
    logits = torch.tensor([[10.0, 10.0, -10.0]])
    assert float(presence_loss(logits, t)) < 1e-4
    assert float(presence_loss(-logits, t)) > 5


def test_scaled_l1_keeps_its_gradient_where_the_oks_loss_loses_it():
    from dcvkit.losses.pose import oks_loss, scaled_l1_loss

    target = torch.tensor([[[10.0, 10.0, 2.0], [20.0, 20.0, 0.0]]])
    areas = torch.tensor([400.0])  # scale 20 px
    pred = torch.tensor([[[13.0, 14.0], [99.0, 99.0]]], requires_grad=True)
    loss = scaled_l1_loss(pred, target, areas)
    assert float(loss.detach()) == pytest.approx((3 + 4) / 20)  # the unlabelled keypoint left out
    far = torch.tensor([[[70.0, 10.0], [20.0, 20.0]]], requires_grad=True)  # 60 px off: 3 object scales
    sigmas = torch.tensor([0.05, 0.05])
    g_oks = torch.autograd.grad(oks_loss(far, target, areas, sigmas), far)[0]
    g_l1 = torch.autograd.grad(scaled_l1_loss(far, target, areas), far)[0]
    assert float(g_oks.abs().max()) < 1e-12 and float(g_l1[0, 0, 0]) == pytest.approx(1 / 20)
