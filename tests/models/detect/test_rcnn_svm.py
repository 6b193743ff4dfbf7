"""R-CNN's second stage: per-class linear SVMs with hard-negative mining, ridge box regressors."""

from __future__ import annotations

import torch

from dcvkit.models import create_model
from dcvkit.models.detect.box_coder import decode
from dcvkit.models.detect.rcnn import SVMConfig, fit_svms


def test_svms_mine_hard_negatives_and_separate_the_classes():
    g = torch.Generator().manual_seed(0)
    m = create_model("rcnn", num_classes=2, img_size=64, backbone="cnn_tiny")
    dim = m.svm.in_features
    centres = torch.randn(2, dim, generator=g) * 3
    n_pos, n_neg = 40, 3000
    pos_labels = torch.arange(n_pos) % 2
    pos = centres[pos_labels] + torch.randn(n_pos, dim, generator=g)
    neg = torch.randn(n_neg, dim, generator=g)
    neg[:200] = centres[0] * 0.6 + torch.randn(200, dim, generator=g)   # look a bit like class 0: the hard ones
    feats = torch.cat([pos, neg])
    is_gt = torch.cat([torch.ones(n_pos), torch.zeros(n_neg)]).bool()
    gt_label = torch.cat([pos_labels, torch.full((n_neg,), -1)])
    iou = torch.zeros(n_pos + n_neg, 2)                   # negatives overlap no object
    regions = torch.tensor([[10.0, 10, 30, 30]]).repeat(n_pos + n_neg, 1)
    match_box = torch.tensor([[12.0, 8, 34, 30]]).repeat(n_pos + n_neg, 1)
    match_iou = torch.zeros(n_pos + n_neg)
    match_iou[n_pos:n_pos + 100] = 0.7                    # close proposals teach the box regressor
    match_label = torch.full((n_pos + n_neg,), -1)
    match_label[n_pos:n_pos + 100] = 0
    data = {"features": feats, "iou": iou, "is_gt": is_gt, "gt_label": gt_label, "regions": regions,
            "match_box": match_box, "match_iou": match_iou, "match_label": match_label}
    stats = fit_svms(m, data, SVMConfig(start_negatives=300, rounds=3))
    assert stats["positives"] == n_pos and stats["hard_negatives_added"] > 0
    assert bool(m.svm_fitted)
    z = (feats - m.feat_mean) / m.feat_std
    s = m.svm(z).detach()
    pos0, neg0 = s[:n_pos][pos_labels == 0, 0], s[n_pos:, 0]
    assert pos0.min() > torch.quantile(neg0, 0.99)       # class-0 objects outrank 99% of the background
    assert s[:n_pos][pos_labels == 1, 0].mean() < pos0.mean()
    d = m.bbox_reg(z[n_pos:n_pos + 100]).view(-1, 2, 4)[:, 0].detach()
    moved = decode(d, regions[:100])
    assert (moved - match_box[:100]).abs().mean() < (regions[:100] - match_box[:100]).abs().mean()
