"""Pictures of generative models: sample grids (PNG, also for TensorBoard), labelled rows of images
(interpolations, latent arithmetic, traversals) and the class histogram of samples."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import Tensor
from torchvision.utils import make_grid

from dcvkit.viz.plots import plt, save_figure


def image_grid(images: Tensor, nrow: int = 8, pad: int = 2) -> Tensor:
    """uint8 (N, C, H, W) -> one uint8 (3, H', W') grid (torchvision's ``make_grid``)."""
    return make_grid(images, nrow=nrow, padding=pad, pad_value=255)


def save_grid(grid: Tensor, path: str | os.PathLike) -> Path:
    """Write a (3, H, W) uint8 grid as PNG, atomically."""
    from dcvkit.data.annotations import write_png

    write_png(Path(path), grid.permute(1, 2, 0).contiguous().numpy())
    return Path(path)


def _show(ax: Any, image: Tensor) -> None:
    img = image.permute(1, 2, 0).numpy()
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
              vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_rows(rows: Sequence[tuple[str, Tensor]], path: str | os.PathLike, col_titles: Sequence[str] = (),
              title: str = "", cell: float = 0.9) -> Path:
    """A grid with one labelled row per ``(label, uint8 images (n, C, H, W))``; optional column titles."""
    n_cols = max(len(imgs) for _, imgs in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.6 + cell * n_cols, 0.3 + cell * len(rows)), squeeze=False)
    for r, (label, imgs) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            if c < len(imgs):
                _show(ax, imgs[c])
            else:
                ax.axis("off")
            if r == 0 and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=7)
        axes[r][0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return Path(path)


def plot_coverage(coverage: dict[str, Any], path: str | os.PathLike, title: str = "") -> Path:
    """Bars: how many generated samples the classifier put in each class, the fair share as a line."""
    hist = coverage["histogram"]
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(hist), 3.2))
    counts = np.array(list(hist.values()), dtype=float)
    ax.bar(list(hist), counts, color=["#c44e52" if name in coverage["rare"] else "#4c72b0" for name in hist])
    ax.axhline(counts.sum() / len(counts), color="k", lw=0.8, ls="--", label="fair share")
    ax.set_ylabel("samples")
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    ax.legend(fontsize=7)
    ax.set_title(title or f"{coverage['covered']}/{coverage['classes']} classes covered, entropy "
                          f"{coverage['entropy']:.3f}", fontsize=9)
    save_figure(fig, path)
    return Path(path)


def plot_latent_grid(images: Tensor, n: int, path: str | os.PathLike, extent: float) -> Path:
    """The 2-D latent manifold: n x n decoded images, z1 along x and z2 along y (top: high z2)."""
    grid = image_grid(images, nrow=n, pad=0)
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.imshow(grid.permute(1, 2, 0).numpy(), extent=(-extent, extent, -extent, extent))
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title("decoded 2-D latent grid", fontsize=9)
    save_figure(fig, path)
    return Path(path)


__all__ = ["image_grid", "save_grid", "plot_rows", "plot_coverage", "plot_latent_grid"]
