"""The segmentation losses: Dice (perfect, wrong, void pixels ignored), and the binary sigmoid head equal to
the two-class softmax."""

from __future__ import annotations

import torch

from dcvkit.losses.segmentation import dice_loss, segmentation_loss


def test_dice_loss_perfect_wrong_and_ignored():
    target = torch.randint(0, 3, (2, 8, 8))
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert float(dice_loss(perfect, target)) < 1e-4
    wrong = torch.nn.functional.one_hot((target + 1) % 3, 3).permute(0, 3, 1, 2).float() * 50
    assert float(dice_loss(wrong, target)) > 0.98  # 1 up to the smooth term
    # void pixels change nothing, whatever the prediction there
    t2 = target.clone()
    t2[:, :2] = 255
    noisy = perfect.clone()
    noisy[:, :, :2] = torch.randn_like(noisy[:, :, :2]) * 50
    assert float(dice_loss(noisy, t2, ignore_index=255)) < 1e-4
    assert float(segmentation_loss("ce_dice", noisy, t2, ignore_index=255)) < 1e-3


def test_binary_head_equals_two_class_softmax():
    """A sigmoid logit z is a softmax over (0, z): the binary and 2-class Dice losses agree."""
    z = torch.randn(2, 1, 6, 6, requires_grad=True)
    target = torch.randint(0, 2, (2, 6, 6))
    two = torch.cat([torch.zeros_like(z), z], 1)
    a, b = dice_loss(z, target), dice_loss(two, target)
    assert torch.allclose(a, b, atol=1e-6)
    a.backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    ce1 = segmentation_loss("ce", z.detach(), target)
    ce2 = segmentation_loss("ce", two.detach(), target)
    assert torch.allclose(ce1, ce2, atol=1e-6)

