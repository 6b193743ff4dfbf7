"""Saliency maps: the fast perturbation engines equal the literal loop; small steps give the gradient; the
gradient equals captum's; the other methods behave as their papers say."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dcvkit.errors import ConfigError
from dcvkit.explain import Explainable, saliency
from dcvkit.explain.model import channel_affine
from dcvkit.explain.perturbation import perturbation_saliency, perturbations, signed_deltas
from dcvkit.explain.reference import naive_perturbation_saliency
from dcvkit.models import create_model


def explainable(name: str, size: int = 12, channels: int = 1, dtype=torch.float64, **kw) -> Explainable:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, in_chans=channels, img_size=size, **kw).to(dtype).eval()
    for m in model.modules():  # non-trivial batch-norm statistics, so the normalisation matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)

    def normalise(x):
        return (x - 0.4) / 0.3

    return Explainable(model, normalise, [f"c{i}" for i in range(5)], channel_affine(model, normalise, channels))


def image(channels: int = 1, size: int = 12, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    x = torch.rand(channels, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    x[0, 0, :3] = torch.tensor([0.0, 1.0, 1 / 255], dtype=dtype)  # values where steps get clipped
    return x


class Chain(nn.Module):
    """A plain chain with every geometry the incremental engine handles: strides, dilation, padded max and
    average pooling, an odd kernel, element-wise layers; odd sizes so windows hit the borders."""

    num_classes, in_chans, img_size = 5, 2, (13, 11)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.1),
            nn.Conv2d(4, 6, 3, padding=2, dilation=2), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(6, 6, (1, 3), padding=(0, 1)), nn.GELU(),
            nn.AvgPool2d(2, stride=1, padding=1), nn.Dropout(0.3))
        self.fc = nn.Linear(6 * 5 * 4, 5)

    def feature_chain(self):
        return list(self.features)

    def forward_head(self, f):
        return self.fc(f.flatten(1))

    def forward(self, x):
        return self.forward_head(self.features(x))


@pytest.mark.parametrize("name,channels,size", [("cnn_tiny", 1, 12), ("cnn_tiny", 3, 10), ("cnn", 1, 16),
                                                ("chain", 2, (13, 11)), ("resnet20", 1, 8)])
@pytest.mark.parametrize("engine", ["auto", "batched"])
def test_fast_engines_equal_the_literal_loop(name, channels, size, engine):
    if name == "chain":
        torch.manual_seed(0)
        model = Chain().double().eval()
        with torch.no_grad():
            model.features[1].running_mean.uniform_(-0.3, 0.3)
        ex = Explainable(model, lambda x: (x - 0.4) / 0.3, [f"c{i}" for i in range(5)])
        ex.affine = channel_affine(model, ex.normalise, channels)
        x = torch.rand(2, 13, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    else:
        ex = explainable(name, size, channels, width=0.25) if name == "resnet20" else explainable(name, size, channels)
        x = image(channels, size)
    deltas = (1, 2, 4)
    ref = naive_perturbation_saliency(ex, x, 2, signed_deltas(deltas))
    res = perturbation_saliency(ex, x, 2, deltas, engine=engine, batch_size=29)  # several uneven batches
    expected_engine = "incremental" if engine == "auto" and name != "resnet20" else "batched"
    assert res.engine == expected_engine  # resnet20 has skips: no plain chain, so batched
    assert (res.saliency - ref).abs().max() < 1e-6 * max(1.0, float(ref.abs().max()))
    assert float(ref.abs().max()) > 0


def test_clipped_steps_count_with_their_real_size():
    x = torch.tensor([[[0.0, 1.0, 0.5 / 255]]], dtype=torch.float64)
    p = perturbations(x, signed_deltas((1, 2)))
    # 0.0 can only go up, 1.0 only down; 0.5/255 goes down by 0.5/255 (clipped) and up by 1 and 2 (/255)
    by_value = {i: sorted((p.step[p.index == i] * 255).tolist()) for i in range(3)}
    assert by_value[0] == pytest.approx([1, 2]) and by_value[1] == pytest.approx([-2, -1])
    assert by_value[2] == pytest.approx([-0.5, -0.5, 1, 2])


class Smooth(nn.Module):
    """A smooth (tanh) CNN: finite differences converge to the gradient."""

    num_classes, in_chans, img_size = 5, 2, (10, 10)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 25, 5)

    def forward(self, x):
        return self.fc(F.avg_pool2d(torch.tanh(self.conv(x)), 2).flatten(1))


def smooth_explainable() -> Explainable:
    torch.manual_seed(0)
    model = Smooth().double().eval()
    return Explainable(model, lambda x: (x - 0.5) * 2, [f"c{i}" for i in range(5)])


def test_small_perturbations_give_the_gradient():
    ex = smooth_explainable()
    x = image(2, 10)
    pert = saliency(ex, x, 1, "perturbation", deltas=(0.001, 0.002)).attributions
    grad = saliency(ex, x, 1, "gradient").attributions
    cos = F.cosine_similarity(pert.flatten().double(), grad.flatten().double(), dim=0)
    assert cos >= 0.99, float(cos)


def test_gradient_matches_captum_saliency():
    from captum.attr import Saliency  # a test-only dependency (pyproject's dev extras)

    ex = smooth_explainable()
    x = image(2, 10)
    ours = saliency(ex, x, 3, "gradient").attributions.double()
    theirs = Saliency(lambda inp: ex.logits(inp).log_softmax(-1)).attribute(x[None].clone().requires_grad_(True),
                                                                            target=3, abs=False)[0]
    assert torch.allclose(ours, theirs.detach(), atol=1e-6)  # ours: float32 attributions of a float64 score
    prob = saliency(ex, x, 3, "gradient", score="prob").attributions.double()
    theirs = Saliency(lambda inp: ex.probs(inp)).attribute(x[None].clone().requires_grad_(True), target=3,
                                                           abs=False)[0]
    assert torch.allclose(prob, theirs.detach(), atol=1e-7)
    s = saliency(ex, x, 3, "gradient")
    assert torch.allclose(s.pixel, ours.abs().mean(0).float())


def saturated_explainable() -> Explainable:
    """A float32 classifier whose class 2 wins by a logit margin of ~40: p = 1.000 in float32 (the softmax
    of the other classes underflows to 1 - p = 0)."""
    torch.manual_seed(0)
    model = create_model("cnn_tiny", num_classes=5, in_chans=1, img_size=12).eval()
    head = model.get_classifier()
    with torch.no_grad():
        head.weight.mul_(0.1)
        head.bias.copy_(torch.tensor([0.0, 0.0, 40.0, 0.0, 0.0]))
    return Explainable(model, lambda x: (x - 0.4) / 0.3, [f"c{i}" for i in range(5)])


def test_a_saturated_prediction_still_has_a_perturbation_map():
    ex = saturated_explainable()
    x = image(1, 12, dtype=torch.float32)
    assert float(ex.probs(x[None])[0, 2].detach()) == 1.0  # saturated in float32
    with pytest.warns(UserWarning, match="all zero"):  # the course's Δprobability vanishes, and says so
        flat = saliency(ex, x, 2, "perturbation", score="prob")
    assert flat.info["degenerate"] == "the map is all zero" and not flat.attributions.any()
    for score in ("logprob", "logit"):  # log p moves by ~1e-20 per unit pixel here: tiny, but every digit real
        s = saliency(ex, x, 2, "perturbation", score=score)
        assert "degenerate" not in s.info and s.attributions.count_nonzero() > 0.9 * s.attributions.numel()
    g = saliency(ex, x, 2, "gradient")  # and the gradient of log p is no longer ~1e-9 noise
    assert "degenerate" not in g.info
    a, b = g.attributions.flatten().double(), saliency(ex, x, 2, "perturbation").attributions.flatten().double()
    cos = (a / a.norm()) @ (b / b.norm())  # (F.cosine_similarity's eps would swamp norms of ~1e-19)
    assert cos > 0.5, float(cos)


def test_smoothgrad_occlusion_and_gradcam_on_a_trained_pattern():
    """A model that only looks at the top-left quadrant: every method must put its mass there."""

    class TopLeft(nn.Module):
        num_classes, in_chans, img_size = 2, 1, (12, 12)
        feature_layers = ["conv"]

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            f = F.relu(self.conv(x))
            return self.fc(f[:, :, :6, :6].mean((2, 3)))

    torch.manual_seed(0)
    model = TopLeft().eval()
    ex = Explainable(model, lambda x: x, ["a", "b"])
    x = torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(1))
    for method, reach in (("gradient", 7), ("smoothgrad", 7), ("perturbation", 7), ("occlusion", 9)):
        s = saliency(ex, x, 0, method, patch=3, stride=1)  # reach: the 3x3 conv (and the 3x3 patch) look further
        inside, outside = s.pixel[:reach, :reach].sum(), s.pixel.sum() - s.pixel[:reach, :reach].sum()
        assert inside > 0 and outside < 1e-6 * inside, (method, float(inside), float(outside))
        assert s.pixel.shape == (12, 12) and s.class_name == "a"
    # Grad-CAM by hand: weights = mean gradient of the logit over the conv output, ReLU of the weighted sum
    s = saliency(ex, x, 0, "gradcam", layer="conv")
    a = model.conv(x[None]).detach().requires_grad_(True)
    logit = model.fc(F.relu(a)[:, :, :6, :6].mean((2, 3)))[0, 0]
    (g,) = torch.autograd.grad(logit, a)
    cam = F.relu((g[0].mean((1, 2))[:, None, None] * a[0]).sum(0)).detach()
    assert s.attributions.shape == (1, 12, 12) and torch.allclose(s.pixel, cam, atol=1e-6)


def test_target_by_name_and_bad_inputs():
    ex = explainable("cnn_tiny", 12)
    x = image(1, 12).float()
    ex.to(dtype=torch.float32)
    s = saliency(ex, x, "c3", "gradient")
    assert s.target == 3 and s.class_name == "c3"
    with pytest.raises(ConfigError, match="not a class"):
        saliency(ex, x, "dog", "gradient")
    with pytest.raises(ConfigError, match="out of range"):
        saliency(ex, x, 9, "gradient")
    with pytest.raises(ConfigError, match="unknown saliency method"):
        saliency(ex, x, None, "lime")
    with pytest.raises(ConfigError, match="takes"):
        saliency(ex, torch.rand(3, 12, 12), None, "gradient")
    with pytest.raises(ConfigError, match="deltas"):
        saliency(ex, x, None, "perturbation", deltas=(0, 1))
    with pytest.raises(ConfigError, match="layer"):
        saliency(ex, x, None, "gradcam", layer="nope")
