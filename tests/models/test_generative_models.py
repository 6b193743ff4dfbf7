"""The generative models' contract over the registry: one face (prior, generate; VAEs encode and decode),
sizes, the conditional model's classes and mixes, the MLP VAE's design, spectral norm in D."""

from __future__ import annotations


import pytest
import torch

from dcvkit.errors import ConfigError
from dcvkit.losses.generative import negative_elbo
from dcvkit.models import create_model, list_models
from dcvkit.models.generate import Generative, stages

GENERATORS = list_models("generate")
SIZES = {"dcgan": (28, 64)}


def test_registry_has_the_three():
    assert set(GENERATORS) == {"vae", "cvae", "dcgan"}


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("size", (28, 64))
def test_same_face(name, size):
    torch.manual_seed(0)
    m = create_model(name, num_classes=4, in_chans=1, img_size=size, width=8)
    assert isinstance(m, Generative) and m.img_size == size
    z = m.prior(3)
    assert z.shape == (3, m.latent_dim)
    y = torch.tensor([0, 1, 3]) if m.num_classes else None
    x = m.generate(z, y)
    assert x.shape == (3, 1, size, size) and x.min() >= 0 and x.max() <= 1
    if name in ("vae", "cvae"):
        logits, mu, logvar = m(x, y)
        assert logits.shape == x.shape and mu.shape == logvar.shape == (3, m.latent_dim)
        negative_elbo(logits, x, mu, logvar)["loss"].backward()
        assert all(p.grad is not None for p in m.parameters())
    else:
        assert m.discriminator(x * 2 - 1).shape == (3,)


def test_stages_and_sizes():
    assert stages(28) == (2, 7) and stages(64) == (4, 4) and stages(32) == (3, 4)
    with pytest.raises(ConfigError, match="cannot be halved"):
        stages(27)


def test_cvae_needs_a_class_and_takes_a_mix():
    m = create_model("cvae", num_classes=3, width=8)
    with pytest.raises(ConfigError, match="conditioned on the class"):
        m.generate(m.prior(2))
    mix = torch.tensor([[0.5, 0.5, 0.0]])
    assert m.generate(m.prior(1), mix).shape == (1, 1, 28, 28)


def test_mlp_vae_is_the_pytorch_examples_design():
    m = create_model("vae", arch="mlp", hidden=400, latent_dim=20)
    # 784 -> 400 -> (20 + 20); 20 -> 400 -> 784
    expected = (784 * 400 + 400) + (400 * 40 + 40) + (20 * 400 + 400) + (400 * 784 + 784)
    assert sum(p.numel() for p in m.parameters()) == expected


def test_spectral_norm_replaces_batch_norm_in_d():
    m = create_model("dcgan", spectral_norm=True, width=8)
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.discriminator.modules())
    assert any(isinstance(x, torch.nn.BatchNorm2d) for x in m.generator.modules())
    w = m.discriminator.body[0].weight  # spectral norm: largest singular value ~1 after power iterations
    for _ in range(20):
        m.discriminator(torch.randn(4, 1, 28, 28))
    m.eval()
    with torch.no_grad():
        sigma = float(torch.linalg.matrix_norm(m.discriminator.body[0].weight.flatten(1), ord=2))
    assert sigma == pytest.approx(1.0, abs=0.05)
    assert w.shape[0] == 8


# --- metrics ---------------------------------------------------------------------------------------------


# --- latent-space interpolation -------------------------------------------------------------------------


# --- the GAN step -----------------------------------------------------------------------------------------


