"""The generative losses against their definitions: the VAE's KL term vs a Monte-Carlo estimate, the KL
annealing schedules' documented weights, and the GAN generator losses' gradients where D rejects fakes."""

from __future__ import annotations

import math

import pytest
import torch

from dcvkit.errors import ConfigError
from dcvkit.losses.generative import (discriminator_loss, generator_loss, kl_divergence, kl_weight, negative_elbo,
                                      reconstruction_nll)


def test_kl_closed_form_matches_monte_carlo():
    """E_q[log q(z) - log p(z)] over 400,000 samples of z ~ N(mu, sigma^2) equals the closed form."""
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.3, -0.7]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.0, 0.5], [1.2, -2.0, 0.1]], dtype=torch.float64)
    std = (0.5 * logvar).exp()
    z = mu + std * torch.randn(400_000, *mu.shape, generator=g, dtype=torch.float64)
    q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
    p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    mc = (q - p).mean(0)
    closed = kl_divergence(mu, logvar).double()
    assert torch.allclose(closed, mc, rtol=0.01)
    # and torch.distributions' analytic KL agrees exactly
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, std),
                                            torch.distributions.Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(closed, ref, atol=1e-6)
    assert kl_divergence(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0


def test_negative_elbo_is_reconstruction_plus_weighted_kl():
    logits = torch.zeros(2, 1, 2, 2)  # sigmoid = 0.5 everywhere
    target = torch.tensor([0.0, 1.0, 1.0, 0.0]).view(1, 1, 2, 2).expand(2, 1, 2, 2)
    assert reconstruction_nll(logits, target, "mse").tolist() == [1.0, 1.0]  # 4 pixels x 0.25
    assert reconstruction_nll(logits, target, "bce") == pytest.approx(torch.full((2,), 4 * math.log(2)))
    mu, logvar = torch.ones(2, 3), torch.zeros(2, 3)  # KL = 1/2 * 3 = 1.5
    out = negative_elbo(logits, target, mu, logvar, "mse", kl_weight=0.5)
    assert out["kl"].item() == pytest.approx(1.5) and out["loss"].item() == pytest.approx(1.0 + 0.75)
    with pytest.raises(ConfigError, match="unknown reconstruction loss"):
        reconstruction_nll(logits, target, "l1")


@pytest.mark.parametrize("schedule, expected", [
    ("none", [1.0, 1.0, 1.0, 1.0, 1.0]),
    ("linear", [0.0, 0.5, 1.0, 1.0, 1.0]),  # ramp over the first half (ratio 0.5)
    ("sigmoid", [1 / (1 + math.exp(6)), 0.5, 1 / (1 + math.exp(-6)), 1 / (1 + math.exp(-12)), 1.0]),
])
def test_kl_schedules_give_the_documented_weights(schedule, expected):
    steps = [0, 250, 500, 750, 1000]  # of 1,000
    got = [kl_weight(s, 1000, schedule, beta=1.0, ratio=0.5) for s in steps]
    assert got == pytest.approx(expected, abs=1e-6)
    assert kl_weight(250, 1000, schedule, beta=4.0) == pytest.approx(4 * expected[1])


def test_cyclical_schedule_restarts_each_cycle():
    """Fu et al. 2019 with M = 4 cycles of 250 steps, R = 0.5: 0 at each cycle's start, half-way up a
    quarter into it (62.5 steps), beta from half-way through the cycle to its end."""
    w = [kl_weight(s, 1000, "cyclical", beta=2.0, ratio=0.5, cycles=4) for s in range(1000)]
    for c in range(4):
        start = 250 * c
        assert w[start] == 0.0
        assert w[start + 62] == pytest.approx(2.0 * 62 / 125)
        assert w[start + 125] == w[start + 249] == 2.0
    assert kl_weight(1000, 1000, "cyclical") == 1.0
    with pytest.raises(ConfigError, match="unknown KL annealing schedule"):
        kl_weight(0, 10, "cosine")


def test_non_saturating_generator_gradient_is_stronger_when_d_rejects_fakes():
    """At D(G(z)) = sigmoid(-6) ~ 0.0025 (early training), d loss / d logit is -sigmoid(-6) for the minimax
    loss and -sigmoid(6) for the non-saturating one: both push the fakes up, the latter ~400x harder."""
    grads = {}
    for kind in ("minimax", "non_saturating"):
        logit = torch.tensor([-6.0], requires_grad=True)
        generator_loss(logit, kind).backward()
        grads[kind] = logit.grad.item()
    assert grads["minimax"] == pytest.approx(-1 / (1 + math.exp(6)), rel=1e-5)
    assert grads["non_saturating"] == pytest.approx(-1 / (1 + math.exp(-6)), rel=1e-5)
    assert abs(grads["non_saturating"]) > 100 * abs(grads["minimax"])
    # where D is fooled (D(G(z)) ~ 1) it is the other way round: minimax keeps pushing, non-saturating rests
    logit = torch.tensor([6.0], requires_grad=True)
    generator_loss(logit, "minimax").backward()
    assert logit.grad.item() == pytest.approx(-1 / (1 + math.exp(-6)), rel=1e-5)


def test_discriminator_losses():
    real, fake = torch.zeros(4), torch.zeros(4)
    assert discriminator_loss(real, fake, "minimax").item() == pytest.approx(2 * math.log(2))
    smooth = discriminator_loss(torch.full((4,), 2.0), fake, "non_saturating", smoothing=0.1).item()
    assert smooth == pytest.approx(math.log1p(math.exp(-2.0)) + 0.1 * 2.0 + math.log(2), rel=1e-6)
    assert discriminator_loss(torch.full((4,), 2.0), torch.full((4,), -2.0), "hinge").item() == 0.0
    assert discriminator_loss(torch.ones(4), torch.zeros(4), "least_squares").item() == 0.0
    assert generator_loss(torch.ones(4), "least_squares").item() == 0.0
    assert generator_loss(torch.full((4,), 3.0), "hinge").item() == -3.0
    with pytest.raises(ConfigError, match="unknown GAN loss"):
        generator_loss(fake, "wasserstein")
