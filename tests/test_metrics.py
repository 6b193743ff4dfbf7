"""Metrics and losses against scikit-learn and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, confusion_matrix as sk_confusion, precision_recall_fscore_support

from dcvkit.losses import classification_loss, focal_loss
from dcvkit.metrics import accuracy, classification_report, confusion_matrix, topk_accuracy


def _random(n=500, k=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g), torch.randint(0, k, (n,), generator=g)


def test_confusion_matrix_and_report_match_sklearn():
    scores, target = _random()
    pred = scores.argmax(1)
    cm = confusion_matrix(scores, target, 6)
    np.testing.assert_array_equal(cm.numpy(), sk_confusion(target, pred, labels=range(6)))
    p, r, f, s = precision_recall_fscore_support(target, pred, labels=range(6), zero_division=0)
    rep = classification_report(cm, [str(i) for i in range(6)])
    np.testing.assert_allclose([x["precision"] for x in rep], p)
    np.testing.assert_allclose([x["recall"] for x in rep], r)
    np.testing.assert_allclose([x["f1"] for x in rep], f)
    assert [x["support"] for x in rep] == s.tolist()
    assert accuracy(scores, target) == pytest.approx(accuracy_score(target, pred))


def test_topk():
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.8, 0.15, 0.05]])
    target = torch.tensor([2, 2])
    assert topk_accuracy(scores, target, 1) == 0.0
    assert topk_accuracy(scores, target, 2) == 0.5
    assert topk_accuracy(scores, target, 3) == 1.0


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
