"""The latent-space tools' pure parts: linear and spherical interpolation, class mixes."""

from __future__ import annotations

import math

import pytest
import torch

from dcvkit.errors import ConfigError
from dcvkit.explain.latent import class_weights, lerp, slerp


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

