"""The classification losses against their closed forms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dcvkit.losses import classification_loss, focal_loss


def _random(n=500, k=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g), torch.randint(0, k, (n,), generator=g)


def test_focal_loss_reduces_to_cross_entropy_at_gamma_0_and_downweights_easy_examples():
    logits, target = _random(64, 5)
    assert focal_loss(logits, target, gamma=0.0) == pytest.approx(float(F.cross_entropy(logits, target)))
    easy = torch.tensor([[8.0, 0.0]]), torch.tensor([0])
    hard = torch.tensor([[0.0, 0.5]]), torch.tensor([0])
    ratio_easy = focal_loss(*easy) / F.cross_entropy(*easy)
    ratio_hard = focal_loss(*hard) / F.cross_entropy(*hard)
    assert ratio_easy < 1e-5 < ratio_hard
    assert classification_loss("cross_entropy", logits, target, 0.1) == pytest.approx(
        float(F.cross_entropy(logits, target, label_smoothing=0.1)))

