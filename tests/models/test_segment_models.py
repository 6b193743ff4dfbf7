"""Contract tests over every segmentation model of the registry, and the U-Net family's structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dcvkit.errors import ConfigError
from dcvkit.models import create_model, list_models

SEGMENTERS = list_models("segment")
# smp_unet needs the optional segmentation-models-pytorch (installed by the dev extras)
HAVE_SMP = True
try:
    import segmentation_models_pytorch  # noqa: F401
except ImportError:  # pragma: no cover
    HAVE_SMP = False
AVAILABLE = [n for n in SEGMENTERS if HAVE_SMP or n != "smp_unet"]


def _build(name: str, **kw) -> nn.Module:
    torch.manual_seed(0)
    small = {"base": 4} if name in ("unet", "conv_autoencoder") else {}
    return create_model(name, num_classes=5, in_chans=3, img_size=32, **{**small, **kw})


def test_registry_has_the_issue_models():
    assert {"unet", "conv_autoencoder", "unet_course"} <= set(SEGMENTERS)


@pytest.mark.parametrize("name", AVAILABLE)
@pytest.mark.parametrize("size", [(32, 32), (37, 50)])
def test_any_size_in_same_size_out_and_gradients(name, size):
    model = _build(name)
    x = torch.randn(2, 3, *size, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 5, *size)
    y.square().mean().backward()
    assert x.grad is not None
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad), "unused parameters"
    assert model.num_classes == 5 and model.in_chans == 3


@pytest.mark.parametrize("name", AVAILABLE)
def test_state_dict_round_trip(name, tmp_path):
    from dcvkit.io import load_checkpoint, save_checkpoint

    a, b = _build(name).eval(), _build(name).eval()
    for p in b.parameters():
        nn.init.zeros_(p)
    save_checkpoint(tmp_path / "m.pt", {"model": a.state_dict()})
    b.load_state_dict(load_checkpoint(tmp_path / "m.pt")["model"])
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_unet_course_is_the_course_network():
    """section(16,16) -> pool -> section(32,32) -> pool -> section(32,64) -> up -> concat -> section(32,32) ->
    up -> concat -> section(16,16) -> 1x1 conv (sigmoid head: one channel)."""
    m = create_model("unet_course", num_classes=1, in_chans=3)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 32, 32, 32, 64, 32, 32, 16, 16, 1]
    # the decoder's sections see the concatenation: 64 up + 32 skip, then 32 up + 16 skip
    assert [convs[6].in_channels, convs[8].in_channels] == [64 + 32, 32 + 16]
    assert not any(isinstance(b, nn.BatchNorm2d) for b in m.modules())
    assert sum(isinstance(b, nn.ConvTranspose2d) for b in m.modules()) == 0  # nearest upsampling, as Keras'
    assert m(torch.randn(1, 3, 28, 28)).shape == (1, 1, 28, 28)


def test_autoencoder_is_unet_without_skips():
    unet, ae = _build("unet"), _build("conv_autoencoder")
    enc_u = {k: v.shape for k, v in unet.state_dict().items() if k.startswith("encoder")}
    enc_a = {k: v.shape for k, v in ae.state_dict().items() if k.startswith("encoder")}
    assert enc_u == enc_a
    # the decoder's first conv of each level is narrower by exactly the skip's channels
    dec_u = [c.in_channels for c in unet.decoder.modules() if isinstance(c, nn.Conv2d)][::2]
    dec_a = [c.in_channels for c in ae.decoder.modules() if isinstance(c, nn.Conv2d)][::2]
    assert [u - a for u, a in zip(dec_u, dec_a)] == list(reversed(unet.encoder.channels[:-1]))


def test_only_the_unet_sees_past_a_blocked_bottleneck():
    """With the bottleneck's output forced to zero, the U-Net's output still depends on the input (through the
    skips); the autoencoder's does not: everything it knows has to pass the bottleneck."""
    def blocked(model):
        model.encoder.blocks[-1].register_forward_hook(lambda m, i, o: torch.zeros_like(o))
        return model.eval()

    unet, ae = blocked(_build("unet", depth=2)), blocked(_build("conv_autoencoder", depth=2))
    a, b = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(unet(a), unet(b))
        assert torch.allclose(ae(a), ae(b))


@pytest.mark.parametrize("upsample", ["nearest", "bilinear", "transpose"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_unet_options(upsample, batch_norm):
    m = create_model("unet", num_classes=1, in_chans=1, depth=3, base=4, upsample=upsample, batch_norm=batch_norm)
    assert m(torch.randn(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    assert any(isinstance(b, nn.BatchNorm2d) for b in m.modules()) == batch_norm
    assert any(isinstance(b, nn.ConvTranspose2d) for b in m.modules()) == (upsample == "transpose")
    assert len(m.encoder.blocks) == 4


def test_unet_with_a_registry_resnet_encoder():
    m = create_model("unet", num_classes=3, in_chans=3, img_size=64, encoder="resnet18", width=0.25)
    assert m.encoder.strides == [2, 4, 8, 16, 32]
    assert m(torch.randn(1, 3, 70, 64)).shape == (1, 3, 70, 64)
    small = create_model("unet", num_classes=3, in_chans=1, img_size=28, encoder="resnet20")
    assert small.encoder.strides[0] == 1 and small(torch.randn(1, 1, 28, 28)).shape == (1, 3, 28, 28)


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="upsample"):
        create_model("unet", upsample="cubic")
    with pytest.raises(ConfigError, match="ResNet family"):
        create_model("unet", encoder="vgg11")
    with pytest.raises(ConfigError, match="depth"):
        create_model("unet", depth=0)
