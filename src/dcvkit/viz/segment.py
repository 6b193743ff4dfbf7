"""Segmentation pictures: image | truth | prediction rows with a class legend, and reconstruction grids."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from torch import Tensor

from dcvkit.viz.plots import plt, save_figure


def colours(n: int) -> np.ndarray:
    """(n, 3) uint8: the palette the mask PNGs use (Pascal VOC's), so pictures and files agree."""
    from dcvkit.data.annotations import palette

    return np.array(palette(max(n, 256)), dtype=np.uint8).reshape(-1, 3)[:n]


def _rgb(image: Tensor) -> np.ndarray:
    a = image.permute(1, 2, 0).numpy()
    return np.repeat(a, 3, -1) if a.shape[-1] == 1 else a


def plot_segmentations(images: Tensor, truth: Tensor, pred: Tensor, classes: Sequence[str],
                       path: str | os.PathLike) -> None:
    """One row per image: the image, the true mask, the predicted mask (colour per class, legend below).

    Shape: images (N, C, H, W) uint8; truth and pred (N, H, W) class ids."""
    pal = colours(256)
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(6.3, 2.1 * n + 0.6), squeeze=False)
    for i in range(n):
        for ax, arr, title in ((axes[i, 0], _rgb(images[i]), "image"),
                               (axes[i, 1], pal[truth[i].long().numpy()], "truth"),
                               (axes[i, 2], pal[pred[i].long().numpy()], "prediction")):
            ax.imshow(arr, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=9)
    present = sorted(set(truth.unique().tolist()) | set(pred.unique().tolist()))
    handles = [plt.Rectangle((0, 0), 1, 1, color=pal[k] / 255) for k in present if k < len(classes)]
    fig.legend(handles, [classes[k] for k in present if k < len(classes)], loc="lower center", ncol=4, fontsize=7,
               frameon=False)
    fig.subplots_adjust(bottom=0.6 / (2.1 * n + 0.6) + 0.02, wspace=0.05, hspace=0.05)
    save_figure(fig, path)


def plot_reconstructions(inputs: Tensor, outputs: Tensor, path: str | os.PathLike, cols: int = 8) -> None:
    """Inputs (odd rows) above their reconstructions (even rows). Shape: (N, C, H, W) uint8 each."""
    n = len(inputs)
    rows = -(-n // cols)
    fig, axes = plt.subplots(2 * rows, cols, figsize=(1.1 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        r, c = 2 * (i // cols), i % cols
        for k, img in enumerate((inputs[i], outputs[i])):
            a = _rgb(img)
            axes[r + k, c].imshow(a, cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=255)
        if c == 0:
            axes[r, c].set_title("input", fontsize=7, loc="left")
            axes[r + 1, c].set_title("reconstruction", fontsize=7, loc="left")
    save_figure(fig, path)


__all__ = ["plot_segmentations", "plot_reconstructions", "colours"]
