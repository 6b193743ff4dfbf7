"""Pictures of explanations: saliency overlays, feature-map grids, first-layer filters."""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
from torch import Tensor

from dcvkit.viz.plots import plt, save_figure


def _show_image(ax: "plt.Axes", image: Tensor) -> None:
    img = image.detach().float().clamp(0, 1).cpu().numpy()
    if img.shape[0] == 1:
        ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img[:3].transpose(1, 2, 0))
    ax.axis("off")


def plot_saliency(image: Tensor, maps: Sequence, path: str | os.PathLike, title: str = "") -> None:
    """The image (with the explained class and its probability), then each map's heat map over the image.

    ``maps`` are :class:`~dcvkit.explain.saliency.SaliencyMap` of the same image and class."""
    n = 1 + len(maps)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.9), squeeze=False)
    first = maps[0]
    _show_image(axes[0][0], image)
    axes[0][0].set_title(f"{first.class_name}: p = {first.probability:.3f}", fontsize=9)
    gray = image.detach().float().cpu().mean(0).numpy()
    for ax, m in zip(axes[0][1:], maps):
        heat = m.pixel.detach().float().cpu().numpy()
        top = float(np.percentile(heat, 99.5)) or float(heat.max()) or 1.0
        ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
        ax.imshow(np.clip(heat / top, 0, 1), cmap="jet", alpha=0.55, vmin=0, vmax=1)
        ax.axis("off")
        ax.set_title(f"{m.method} ({m.seconds:.2f} s)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def _grid(n: int) -> tuple[int, int]:
    cols = int(math.ceil(math.sqrt(n)))
    return int(math.ceil(n / cols)), cols


def plot_feature_maps(maps: Tensor, path: str | os.PathLike, title: str = "") -> None:
    """Every channel (C, h, w) of one layer's output as a small gray image, each scaled to its own range."""
    c = maps.shape[0]
    rows, cols = _grid(c)
    fig, axes = plt.subplots(rows, cols, figsize=(0.9 * cols + 0.4, 0.9 * rows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < c:
            ax.imshow(maps[i].numpy(), cmap="viridis", interpolation="nearest")
            ax.set_title(str(i), fontsize=6, pad=1)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def plot_filters(weights: Tensor, path: str | os.PathLike, title: str = "") -> None:
    """First-layer filters (out, in, kh, kw): RGB when they take 3 channels, else their first channel."""
    o = weights.shape[0]
    rows, cols = _grid(o)
    fig, axes = plt.subplots(rows, cols, figsize=(0.7 * cols + 0.4, 0.7 * rows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= o:
            continue
        w = weights[i]
        w = (w - w.min()) / (w.max() - w.min() + 1e-12)
        if w.shape[0] == 3:
            ax.imshow(w.numpy().transpose(1, 2, 0), interpolation="nearest")
        else:
            ax.imshow(w[0].numpy(), cmap="gray", interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
