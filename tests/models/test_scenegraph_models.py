"""The scene-graph family's face: every model's loss trains, its predictions have the documented shapes, the
frequency bias is the training counts' log-probability, and the union masks mark whose box is whose."""

from __future__ import annotations

import pytest
import torch

from dcvkit.models import create_model, list_models
from dcvkit.models.scenegraph.base import all_pairs, pair_geometry
from dcvkit.models.scenegraph.visual import box_masks

MODELS = list_models("scenegraph")
BOXES = [torch.tensor([[0, 0, 30, 30], [20, 20, 60, 50.], [70, 10, 100, 40]]), torch.tensor([[5, 5, 40, 40.]])]
LABELS = [torch.tensor([1, 2, 3]), torch.tensor([4])]
RELATIONS = [torch.tensor([[0, 1, 6], [1, 0, 7], [2, 0, 0]]), torch.zeros(0, 3, dtype=torch.long)]


def test_the_three_models_are_registered():
    assert MODELS == ["frequency", "geometry", "visual"]


@pytest.mark.parametrize("name", MODELS)
def test_loss_trains_and_predict_has_the_face(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, num_predicates=8, img_size=64)
    x = torch.randn(2, 3, 64, 64)
    out = model.loss(x, BOXES, LABELS, RELATIONS)
    assert set(out) == {"loss", "obj_loss", "rel_loss"} and torch.isfinite(out["loss"])
    out["loss"].backward()
    trained = [n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert any(n.startswith("classifier") for n in trained)
    assert any(n.startswith(("head", "union_head")) for n in trained) == (name != "frequency")
    model.eval()
    sgcls = model.predict(x, BOXES)
    predcls = model.predict(x, BOXES, LABELS)
    assert [len(g.pairs) for g in sgcls] == [6, 0]
    assert sgcls[0].predicate_scores.shape == (6, 8) and 0 <= float(sgcls[0].predicate_scores.min())
    assert float(sgcls[0].predicate_scores.sum(1).max()) <= 1 + 1e-5  # background excluded
    assert predcls[0].labels.tolist() == [1, 2, 3] and predcls[0].scores.tolist() == [1, 1, 1]
    assert 0 < float(sgcls[0].scores.min()) <= 1


def test_frequency_model_predicts_the_most_frequent_predicate():
    model = create_model("frequency", num_classes=3, num_predicates=2, img_size=64).eval()
    counts = torch.zeros(3, 3, 3)
    counts[0, 1] = torch.tensor([1.0, 2.0, 9.0])  # classes 0 -> 1: mostly predicate 1 (index 2 with background)
    counts[1, 0] = torch.tensor([1.0, 9.0, 2.0])
    model.set_prior(counts)
    assert torch.allclose(model.log_prior[0, 1].exp(), torch.tensor([2.0, 3.0, 10.0]) / 15)  # Laplace + 1
    g = model.predict(torch.zeros(1, 3, 64, 64), [BOXES[0][:2]], [torch.tensor([0, 1])])[0]
    assert g.pairs.tolist() == [[0, 1], [1, 0]] and g.predicate_scores.argmax(1).tolist() == [1, 0]


def test_pairs_geometry_and_masks():
    assert all_pairs(3).tolist() == [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
    boxes = torch.tensor([[0, 0, 10, 10], [10, 0, 20, 10.]])
    g = pair_geometry(boxes, all_pairs(2), (20, 20))
    assert g.shape == (2, 16) and g[0, 8].item() == pytest.approx(1.0) and g[1, 8].item() == pytest.approx(-1.0)
    union = torch.tensor([[0, 0, 20, 10.], [0, 0, 20, 10.]])
    m = box_masks(boxes, all_pairs(2), union, 4)
    assert m[0, 0, 0].tolist() == [1, 1, 0, 0] and m[0, 1, 0].tolist() == [0, 0, 1, 1]  # subject left, object right
    assert torch.equal(m[1, 0], m[0, 1])
