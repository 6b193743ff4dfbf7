"""Contract tests over the whole registry (timm style): every model, the same checks."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from dcvkit.errors import ConfigError, ModelNotFoundError
from dcvkit.models import create_model, list_models, model_entry, register_model
from dcvkit.models.classify import Classifier

CLASSIFIERS = list_models("classify")
# Per-model exceptions to the defaults live here, in one place.
INPUT = {"default": (2, 1, 28, 28), "lrcn": (2, 3, 1, 28, 28)}


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
    # feature maps keep the batch (batch x time for clip models) as their first dimension
    leading = x.shape[:-3].numel()
    assert list(feats) == model.feature_layers and all(f.shape[0] == leading for f in feats.values())
    with torch.no_grad():
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == \
            (x.shape[0], model.get_classifier().in_features)
    model.reset_classifier(3)
    assert model(x).shape == (x.shape[0], 3) and model.get_classifier().out_features == 3


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_feature_chain_is_forward_features(name):
    """A model that declares its features a plain chain of leaf modules computes exactly that chain."""
    model = _build(name).eval()
    chain = model.feature_chain()
    if chain is None:
        return
    x = torch.randn(*INPUT.get(name, INPUT["default"]))
    with torch.no_grad():
        y = x
        for m in chain:
            assert not list(m.children()), f"{name}: feature_chain must list leaf modules"
            y = m(y)
        assert torch.allclose(y, model.forward_features(x))


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


TAKES_STEM = [n for n in CLASSIFIERS if "stem" in inspect.signature(model_entry(n).builder).parameters]


@pytest.mark.parametrize("name", TAKES_STEM)
def test_imagenet_stem_and_width_knob(name):
    """Every architecture with a stem also runs the strided ImageNet stem, on RGB, at a reduced width."""
    narrow = create_model(name, num_classes=4, in_chans=3, img_size=64, stem="imagenet", width=0.25)
    assert narrow(torch.randn(2, 3, 64, 64)).shape == (2, 4)
    full = create_model(name, num_classes=4, in_chans=3, img_size=64, stem="imagenet")
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(narrow) < n(full) / 4


def test_plain_and_residual_twins_share_weights_not_outputs():
    """plainN is resnetN without shortcuts: same parameters (option-A shortcuts have none), other function."""
    torch.manual_seed(0)
    res = create_model("resnet20", num_classes=10).eval()
    plain = create_model("plain20", num_classes=10).eval()
    plain.load_state_dict(res.state_dict())
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert not torch.allclose(res(x), plain(x))
    assert len(res.layer1) == 3 and sum(isinstance(m, nn.Conv2d) for m in res.modules()) + 1 == 20


def test_resnet18_matches_torchvision():
    """Same parameter names and function as torchvision's resnet18: its state dicts load directly."""
    import torchvision

    tv = torchvision.models.resnet18(num_classes=5).eval()
    ours = create_model("resnet18", num_classes=5, in_chans=3, img_size=64, stem="imagenet").eval()
    ours.load_state_dict(tv.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv(x), atol=1e-5)


def test_googlenet_aux_heads_train_only():
    model = create_model("googlenet", num_classes=5, width=0.25, aux_logits=True)
    x = torch.randn(2, 1, 28, 28)
    model(x)
    assert [a.shape for a in model.aux_outputs] == [(2, 5), (2, 5)]
    model.eval()
    model(x)
    assert model.aux_outputs == []


def test_lrcn_needs_clips():
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        create_model("lrcn")(torch.randn(2, 1, 36, 36))
