"""The generative models' contract (over the registry), the metrics against their definitions, the latent
interpolations, and the GAN step's alternation (D's step never moves G; G's step never moves D)."""

from __future__ import annotations

import math

import pytest
import torch

from dcvkit.errors import ConfigError
from dcvkit.losses.generative import negative_elbo
from dcvkit.metrics.generative import (active_units, class_coverage, frechet_distance, gaussian_stats,
                                       importance_sampled_nll)
from dcvkit.models import create_model, list_models
from dcvkit.models.generate import Generative, stages
from dcvkit.explain.latent import class_weights, lerp, slerp

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


# --- latent-space interpolation -------------------------------------------------------------------------


def test_lerp_and_slerp_end_points_and_norms():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    t = torch.linspace(0, 1, 5)
    for f in (lerp, slerp):
        path = f(a, b, t)
        assert torch.allclose(path[0], a, atol=1e-6) and torch.allclose(path[-1], b, atol=1e-6)
    s = slerp(a, b, t)
    # on the arc: the angle moves uniformly (22.5 degrees per step), the norm linearly from 1 to 2
    assert torch.allclose(s.norm(dim=1), torch.tensor([1.0, 1.25, 1.5, 1.75, 2.0]), atol=1e-5)
    angles = torch.atan2(s[:, 1], s[:, 0])
    assert torch.allclose(angles, t * math.pi / 2, atol=1e-5)
    # the linear midpoint of two opposite-ish Gaussian draws falls inside: its norm shrinks
    assert lerp(a, b, torch.tensor([0.5]))[0].norm() < 1.2


def test_class_weights():
    classes = ["T-shirt", "Sandal", "Sneaker"]
    assert class_weights("Sneaker=0.5,Sandal=0.5", classes).tolist() == [0.0, 0.5, 0.5]
    assert class_weights("0,2", classes).tolist() == [0.5, 0.0, 0.5]
    assert torch.allclose(class_weights("Sandal=3,Sneaker=1", classes), torch.tensor([0.0, 0.75, 0.25]))
    with pytest.raises(ConfigError):
        class_weights("Sandal=abc", classes)


# --- the GAN step -----------------------------------------------------------------------------------------


def _gan_task(d_steps: int = 1):
    from dcvkit.config import TrainConfig
    from dcvkit.tasks.generate import GANTask, GenerateConfig, resolve_defaults

    torch.manual_seed(0)
    cfg = resolve_defaults(GenerateConfig(model="dcgan", d_steps=d_steps, fid_classifier="none"))
    m = create_model("dcgan", width=8)
    task = GANTask(m, cfg, ["a", "b"], {}, 10)
    task.configure_optimizers(TrainConfig())
    return task


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_gan_step_alternates_players():
    """With --d-steps 2: a D-only step leaves G untouched; a D + G step moves both, and G's update alone
    (replayed) leaves D untouched."""
    task = _gan_task(d_steps=2)
    m = task.model
    batch = (torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8), torch.zeros(8, dtype=torch.long))
    g0, d0 = _snapshot(m.generator), _snapshot(m.discriminator)
    loss, logs = task.training_step(batch)  # step 1: D only
    assert not _changed(g0, m.generator) and _changed(d0, m.discriminator)
    assert float(loss) == 0.0 and float(logs["g_grad_norm"]) == 0.0  # no G step yet
    g1, d1 = _snapshot(m.generator), _snapshot(m.discriminator)
    loss, logs = task.training_step(batch)  # step 2: D and G
    assert _changed(g1, m.generator) and _changed(d1, m.discriminator)
    assert set(logs) >= {"d_loss", "d_acc", "d_fake", "g_grad_norm", "d_grad_norm"} and float(loss) > 0
    assert float(logs["g_grad_norm"]) > 0
    # G's update never moves D: after a G backward, D's grads are dropped before the step
    g2, d2 = _snapshot(m.generator), _snapshot(m.discriminator)
    fake = m.generator(torch.randn(4, m.latent_dim))
    from dcvkit.losses.generative import generator_loss

    task.optimizer.zero_grad(set_to_none=True)
    generator_loss(m.discriminator(fake)).backward()
    for p in task.d_params:
        p.grad = None
    task.optimizer.step()
    assert _changed(g2, m.generator) and not _changed(d2, m.discriminator)


def test_gan_loss_options_are_checked():
    from dcvkit.tasks.generate import GenerateConfig, resolve_defaults

    with pytest.raises(ConfigError, match="--d-steps"):
        resolve_defaults(GenerateConfig(model="dcgan", d_steps=0))
    with pytest.raises(ConfigError, match="--arch is an option of cvae, vae, not of dcgan"):
        resolve_defaults(GenerateConfig(model="dcgan", arch="mlp"))
    cfg = resolve_defaults(GenerateConfig(model="dcgan"))
    assert cfg.lr == 2e-4 and cfg.monitor == "val_fid" and cfg.epochs == 15
    cfg = resolve_defaults(GenerateConfig(model="vae"))
    assert cfg.lr == 1e-3 and cfg.monitor == "val_loss" and cfg.epochs == 20


def test_inception_fid_is_skipped_without_local_weights_and_refuses_unsafe_ones(tmp_path, monkeypatch, capsys):
    from dcvkit.errors import CheckpointError
    from dcvkit.metrics.fid import _safe_inception, inception_fid

    imgs = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache: nothing is downloaded
    value, note = inception_fid(imgs, imgs, torch.device("cpu"))
    assert value is None and note.startswith("skipped: ")  # torch-fidelity missing, or no weights

    class Boom:
        def __reduce__(self):
            return (print, ("PWNED",))

    bad = tmp_path / "weights.pth"
    torch.save({"fc.weight": Boom()}, bad)

    class FidelityLike:  # what torch-fidelity's extractor does with a weights path
        def __init__(self, feature, feature_extractor_weights_path):
            self.state = torch.load(feature_extractor_weights_path, weights_only=False)

    with pytest.raises(CheckpointError, match="not usable as the FID Inception weights"):
        _safe_inception(FidelityLike, bad)
    assert "PWNED" not in capsys.readouterr().out
    good = tmp_path / "good.pth"
    torch.save({"fc.weight": torch.ones(2)}, good)
    assert torch.equal(_safe_inception(FidelityLike, good).state["fc.weight"], torch.ones(2))
