"""Contract tests over every registered detector: one face (regions in, class logits and box deltas out),
probabilities and boxes from predict_regions, detections from detect, state-dict round trip."""

from __future__ import annotations

import pytest
import torch

from dcvkit.models import create_model, list_models
from dcvkit.models.detect.base import RegionDetector
from dcvkit.models.detect.postprocess import Detections

DETECTORS = list_models("detect")


def _regions():
    return [torch.tensor([[0.0, 0, 24, 24], [8, 8, 40, 30], [30, 2, 62, 60]]), torch.tensor([[4.0, 4, 20, 36]])]


def test_the_lineage_is_registered():
    assert {"sliding_window", "rcnn", "fast_rcnn"} <= set(DETECTORS)


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_face(name):
    torch.manual_seed(0)
    m = create_model(name, num_classes=3, in_chans=3, img_size=64, backbone="cnn_tiny")
    assert isinstance(m, RegionDetector) and m.num_classes == 3 and m.proposal_method in ("selective_search",
                                                                                          "sliding_window")
    x = torch.randn(2, 3, 64, 64)
    logits, deltas = m(x, _regions())
    assert logits.shape == (4, 4)
    assert deltas is None or deltas.shape == (4, 3, 4)
    (logits.sum() + (deltas.sum() if deltas is not None else 0)).backward()
    m.eval()
    scores, boxes = m.predict_regions(x, _regions())
    assert scores.shape == (4, 3) and boxes.shape == (4, 3, 4) and ((scores >= 0) & (scores <= 1)).all()
    dets = m.detect(x, _regions())
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    for d in dets:
        assert (d.boxes >= 0).all() and (d.boxes <= 64).all() and (d.scores[:-1] >= d.scores[1:]).all()


@pytest.mark.parametrize("name", DETECTORS)
def test_state_dict_round_trip(name):
    a = create_model(name, num_classes=2, img_size=64, backbone="cnn_tiny").eval()
    b = create_model(name, num_classes=2, img_size=64, backbone="cnn_tiny").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(a(x, _regions()[:1])[0], b(x, _regions()[:1])[0])


def test_fast_rcnn_is_rcnn_with_pooling_instead_of_crops():
    """Fast R-CNN runs the same registry classifier: convolutions once, its dense head on pooled regions."""
    f = create_model("fast_rcnn", num_classes=3, img_size=64, backbone="cnn_tiny")
    r = create_model("rcnn", num_classes=3, img_size=64, backbone="cnn_tiny")
    assert type(f.backbone) is type(r.backbone)
    assert f.stride == 4 and f.roi.spatial_scale == 0.25 and f.roi.kind == "pool"
    assert create_model("fast_rcnn", num_classes=3, roi="align").roi.kind == "align"
