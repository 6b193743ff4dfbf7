"""Contract tests over every registered detector: one face (a training loss, detections from detect), the
region classifiers' regions-in / logits-and-deltas-out face, state-dict round trip."""

from __future__ import annotations

import pytest
import torch

from dcvkit.models import create_model, model_entry, list_models
from dcvkit.models.detect.base import Detector, RegionDetector
from dcvkit.models.detect.postprocess import Detections

DETECTORS = list_models("detect")


def _regions():
    return [torch.tensor([[0.0, 0, 24, 24], [8, 8, 40, 30], [30, 2, 62, 60]]), torch.tensor([[4.0, 4, 20, 36]])]


def test_the_lineage_is_registered():
    assert {"sliding_window", "rcnn", "fast_rcnn", "faster_rcnn", "yolo_v1", "yolo"} <= set(DETECTORS)


def _targets():
    return [torch.tensor([[2.0, 2, 30, 26]]), torch.tensor([[10.0, 12, 40, 50], [40, 4, 62, 30]])], \
        [torch.tensor([0]), torch.tensor([1, 2])]


def _build(name, **kw):
    kw = {"num_classes": 3, "in_chans": 3, "img_size": 64, **kw}
    if "backbone" in model_entry(name).options:  # the YOLOs have their own backbone
        kw["backbone"] = "cnn_tiny"
    return create_model(name, **kw)


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_face(name):
    """Every detector: a training loss from images and boxes (and proposals when it needs them) that
    back-propagates, and detections inside the image, best first."""
    torch.manual_seed(0)
    m = _build(name)
    assert isinstance(m, Detector) and m.num_classes == 3 and m.img_size == (64, 64)
    assert m.proposal_method in ("selective_search", "sliding_window", "rpn", "none")
    assert m.needs_proposals == (m.proposal_method in ("selective_search", "sliding_window"))
    x = torch.randn(2, 3, 64, 64)
    boxes, labels = _targets()
    out = m.loss(x, boxes, labels, _regions() if m.needs_proposals else None)
    assert "loss" in out and torch.isfinite(out["loss"]) and all(v.ndim == 0 for v in out.values())
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    m.eval()
    dets = m.detect(x, _regions() if m.needs_proposals else None)
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    for d in dets:
        assert (d.boxes >= 0).all() and (d.boxes <= 64).all() and (d.scores[:-1] >= d.scores[1:]).all()
        assert ((d.labels >= 0) & (d.labels < 3)).all()


@pytest.mark.parametrize("name", [n for n in DETECTORS if isinstance(_build(n), RegionDetector)])
def test_region_detector_face(name):
    """The region classifiers (and Faster R-CNN's second stage): regions in, class logits and deltas out."""
    m = _build(name)
    x = torch.randn(2, 3, 64, 64)
    logits, deltas = m(x, _regions())
    assert logits.shape == (4, 4)
    assert deltas is None or deltas.shape == (4, 3, 4)
    m.eval()
    scores, boxes = m.predict_regions(x, _regions())
    assert scores.shape == (4, 3) and boxes.shape == (4, 3, 4) and ((scores >= 0) & (scores <= 1)).all()


@pytest.mark.parametrize("name", DETECTORS)
def test_state_dict_round_trip(name):
    torch.manual_seed(0)
    a = _build(name, num_classes=2).eval()
    b = _build(name, num_classes=2).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 64, 64)
    props = _regions()[:1] if a.needs_proposals else None
    da, db = a.detect(x, props)[0], b.detect(x, props)[0]
    assert torch.equal(da.boxes, db.boxes) and torch.equal(da.scores, db.scores)


def test_fast_rcnn_is_rcnn_with_pooling_instead_of_crops():
    """Fast R-CNN runs the same registry classifier: convolutions once, its dense head on pooled regions."""
    f = create_model("fast_rcnn", num_classes=3, img_size=64, backbone="cnn_tiny")
    r = create_model("rcnn", num_classes=3, img_size=64, backbone="cnn_tiny")
    assert type(f.backbone) is type(r.backbone)
    assert f.stride == 4 and f.roi.spatial_scale == 0.25 and f.roi.kind == "align"
    assert create_model("fast_rcnn", num_classes=3, roi="pool").roi.kind == "pool"
