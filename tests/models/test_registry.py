"""Contract tests over the whole registry (timm style): every model, the same checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dcvkit.errors import ConfigError, ModelNotFoundError
from dcvkit.models import create_model, list_models, register_model
from dcvkit.models.classify import Classifier

CLASSIFIERS = list_models("classify")
# Per-model exceptions to the defaults live here, in one place.
INPUT = {"default": (2, 1, 28, 28)}


def _build(name: str) -> Classifier:
    torch.manual_seed(0)
    return create_model(name, num_classes=7, in_chans=1, img_size=28)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_forward_backward_shape(name):
    model = _build(name)
    x = torch.randn(*INPUT.get(name, INPUT["default"]), requires_grad=True)
    y = model(x)
    assert y.shape == (x.shape[0], 7)
    y.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_same_face(name):
    model = _build(name).eval()
    x = torch.randn(*INPUT.get(name, INPUT["default"]))
    with torch.no_grad():
        assert torch.allclose(model.forward_head(model.forward_features(x)), model(x))
        feats = model.forward_intermediates(x)
    assert list(feats) == model.feature_layers and all(f.shape[0] == x.shape[0] for f in feats.values())
    model.reset_classifier(3)
    assert model(x).shape == (x.shape[0], 3)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_state_dict_round_trip(name, tmp_path):
    from dcvkit.io import load_checkpoint, save_checkpoint

    a, b = _build(name).eval(), create_model(name, num_classes=7, in_chans=1, img_size=28).eval()
    save_checkpoint(tmp_path / "m.pt", {"model": a.state_dict()})
    b.load_state_dict(load_checkpoint(tmp_path / "m.pt")["model"])
    x = torch.randn(*INPUT.get(name, INPUT["default"]))
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("name", [n for n in CLASSIFIERS if n.startswith("cnn")])
def test_cnn_takes_other_sizes_and_rgb(name):
    model = create_model(name, num_classes=5, in_chans=3, img_size=64)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_unknown_model_suggests():
    with pytest.raises(ModelNotFoundError, match="did you mean cnn"):
        create_model("cnnn")


def test_unknown_option_is_a_config_error():
    with pytest.raises(ConfigError, match="takes no option"):
        create_model("mlp", num_clases=3)


def test_duplicate_name_raises():
    with pytest.raises(ValueError, match="already registered"):
        @register_model("classify")
        def cnn() -> nn.Module:  # noqa: F811
            return nn.Identity()


def test_unknown_layer_lists_valid_ones():
    model = _build("cnn_tiny")
    with pytest.raises(ConfigError, match="valid layers: blocks.0, blocks.1"):
        model.forward_intermediates(torch.randn(1, 1, 28, 28), ["blocks.9"])
