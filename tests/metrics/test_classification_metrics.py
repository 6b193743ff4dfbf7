"""The classification metrics against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix as sk_confusion, precision_recall_fscore_support

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


