"""Moving Fashion-MNIST: short clips of one Fashion-MNIST item moving, labelled by its motion.

Each clip places a 28x28 item on a ``size`` x ``size`` canvas and moves it over ``frames`` frames in one of
six ways: sliding right, left, down or up, or rotating clockwise or counter-clockwise. Speed, start and
the item are random, so no single frame tells the class: a model must compare frames over time, which is
what LRCN's LSTM is for (a per-frame CNN alone is at chance, 1/6, on the direction of motion).

Clips are made on the fly with one batched ``grid_sample`` (about a second for 10,000 clips), from a fixed
generator seed so the dataset is the same in every run; train clips come from Fashion-MNIST's training
images, test clips from its test images.

Shape: images (N, frames, 1, size, size) uint8, labels (N,) int64 in [0, 6).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from dcvkit.data.core import ImageTensors

MOTIONS = ["slide right", "slide left", "slide down", "slide up", "rotate clockwise", "rotate counter-clockwise"]


def motion_thetas(motion: Tensor, frames: int, size: int, item: int, g: torch.Generator) -> Tensor:
    """Affine matrices (N, frames, 2, 3) for ``F.affine_grid``: output pixel -> input pixel, normalised."""
    n = len(motion)
    t = torch.linspace(0, 1, frames).view(1, frames)
    travel = (size - item) / 2 * 2 / size * 2  # normalised distance from one side of the canvas to the other
    speed = 0.6 + 0.4 * torch.rand(n, 1, generator=g)
    along = (t - 0.5) * travel * speed  # (n, frames), centred path
    across = ((torch.rand(n, 1, generator=g) - 0.5) * travel * 0.5).expand(n, frames)
    turn = math.radians(60) * speed * torch.where(motion == 4, 1.0, -1.0).view(n, 1)
    start = math.radians(15) * (torch.rand(n, 1, generator=g) * 2 - 1)
    angle = torch.where((motion >= 4).view(n, 1), start + turn * t, 0.0)
    sign = torch.where((motion % 2 == 0), 1.0, -1.0).view(n, 1)
    horizontal = (motion <= 1).view(n, 1)
    vertical = ((motion == 2) | (motion == 3)).view(n, 1)
    dx = torch.where(horizontal, sign * along, torch.where(vertical, across, 0.0))
    dy = torch.where(vertical, sign * along, torch.where(horizontal, across, 0.0))
    cos, sin = angle.cos(), angle.sin()
    # Sample the input at R(-angle) (p - d): the item turns by +angle (clockwise on screen, y down) and moves by d.
    return torch.stack([
        torch.stack([cos, sin, -(cos * dx + sin * dy)], -1),
        torch.stack([-sin, cos, -(-sin * dx + cos * dy)], -1),
    ], -2)


def moving_clips(images: Tensor, frames: int = 8, size: int = 36, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Clips of ``images`` (N, 1, 28, 28) uint8 in motion: (N, frames, 1, size, size) uint8 and motions (N,)."""
    n, c, h, w = images.shape
    g = torch.Generator().manual_seed(seed)
    motion = torch.randperm(n, generator=g) % len(MOTIONS)
    pad = (size - w) // 2, size - w - (size - w) // 2, (size - h) // 2, size - h - (size - h) // 2
    canvas = F.pad(images.float(), pad)  # (n, c, size, size)
    theta = motion_thetas(motion, frames, size, h, g)
    out = torch.empty(n, frames, c, size, size, dtype=torch.uint8)
    for i in range(0, n, 2048):  # in chunks, to bound memory
        src = canvas[i:i + 2048].repeat_interleave(frames, 0)
        th = theta[i:i + 2048].flatten(0, 1)
        grid = F.affine_grid(th, list(src.shape), align_corners=False)
        clip = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out[i:i + 2048] = clip.round().clamp(0, 255).to(torch.uint8).view(-1, frames, c, size, size)
    return out, motion


def moving_fashion_mnist(train: ImageTensors, test: ImageTensors, n_train: int = 12_000, n_test: int = 2_000,
                         frames: int = 8, size: int = 36) -> tuple[ImageTensors, ImageTensors]:
    """Train and test clip sets from the first ``n_train`` / ``n_test`` Fashion-MNIST images."""
    tr, ytr = moving_clips(train.images[:n_train], frames, size, seed=1)
    te, yte = moving_clips(test.images[:n_test], frames, size, seed=2)
    return ImageTensors(tr, ytr, list(MOTIONS)), ImageTensors(te, yte, list(MOTIONS))
