"""The generative metrics against their definitions: the Fréchet distance (closed form, scipy), class
coverage, the importance-sampled NLL (K = 1 is the ELBO, more samples tighten it), active units."""

from __future__ import annotations

import pytest
import torch

from dcvkit.losses.generative import negative_elbo
from dcvkit.metrics.generative import (active_units, class_coverage, frechet_distance, gaussian_stats,
                                       importance_sampled_nll)
from dcvkit.models import create_model


def test_frechet_distance_of_diagonal_gaussians():
    """For diagonal covariances the formula is ||mu1 - mu2||^2 + sum (s1 - s2)^2 (s: standard deviations)."""
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    s1, s2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 1.0, 0.5])
    fd = frechet_distance(mu1, torch.diag(s1 ** 2), mu2, torch.diag(s2 ** 2))
    assert fd == pytest.approx(5.0 + 4.0 + 1.0 + 0.0, abs=1e-9)


def test_frechet_distance_matches_scipy_and_is_zero_on_itself():
    from scipy import linalg

    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    b = torch.randn(500, 6, generator=g, dtype=torch.float64) * 2 + 1
    (m1, c1), (m2, c2) = gaussian_stats(a), gaussian_stats(b)
    root = linalg.sqrtm(c1.numpy() @ c2.numpy()).real
    ref = float(((m1 - m2) ** 2).sum() + c1.trace() + c2.trace() - 2 * float(root.trace()))
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(ref, rel=1e-6)
    assert abs(frechet_distance(m1, c1, m1, c1)) < 1e-6


def test_class_coverage_flags_a_missing_class():
    classes = ["a", "b", "c", "d"]
    even = class_coverage(torch.arange(400) % 4, classes)
    assert even["covered"] == 4 and even["entropy"] == pytest.approx(1.0) and not even["mode_collapse"]
    collapsed = class_coverage(torch.tensor([0] * 390 + [1] * 8 + [2] * 2), classes)
    # d never appears, c gets 2 of 400 (< 10% of its fair share of 100)
    assert collapsed["histogram"] == {"a": 390, "b": 8, "c": 2, "d": 0}
    assert collapsed["covered"] == 1 and collapsed["mode_collapse"] and collapsed["max_share"] == 0.975


def test_importance_sampled_nll_tightens_the_elbo():
    """K = 1 is an unbiased estimate of -ELBO; K = 500 gives a smaller (tighter) value, never a larger one."""
    torch.manual_seed(0)
    m = create_model("vae", arch="mlp", hidden=32, latent_dim=4, img_size=8)
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        mu, logvar = m.encode(x)
        elbo_terms = []
        for _ in range(400):
            logits = m.decode(m.reparameterise(mu, logvar))
            elbo_terms.append(negative_elbo(logits, x, mu, logvar)["loss"])
    neg_elbo = float(torch.stack(elbo_terms).mean())
    k1 = float(torch.stack([importance_sampled_nll(m, x, samples=1).mean() for _ in range(400)]).mean())
    k500 = float(importance_sampled_nll(m, x, samples=500, chunk=100).mean())
    assert k1 == pytest.approx(neg_elbo, rel=2e-3)
    assert k500 < neg_elbo


def test_active_units_counts_dimensions_that_vary():
    mu = torch.zeros(100, 5)
    mu[:, 1] = torch.linspace(-1, 1, 100)  # variance ~0.34
    mu[:, 3] = torch.linspace(-0.05, 0.05, 100)  # variance ~0.0009: inactive
    assert active_units(mu) == 1

