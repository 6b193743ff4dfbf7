"""Matplotlib plots written as PNG (Agg backend: no display needed), each saved atomically."""

from __future__ import annotations

import io
import os
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from dcvkit.io import atomic_write  # noqa: E402


def save_figure(fig: "plt.Figure", path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def plot_history(history: Sequence[dict[str, float]], path: str | os.PathLike) -> None:
    """Loss and accuracy curves (train vs validation) per epoch, and the learning rate."""
    if not history:
        return
    epochs = [h["epoch"] for h in history]
    panels = [("loss", "loss"), ("acc", "accuracy"), ("dice", "mean Dice (foreground)"), ("psnr", "PSNR (dB)"), ("map50", "mAP@0.5"),
              ("lr", "learning rate")]
    panels = [(k, t) for k, t in panels if any(k in h or f"train_{k}" in h or f"val_{k}" in h for h in history)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (key, title) in zip(list(axes) if len(panels) > 1 else [axes], panels):
        for prefix, style in (("train_", "-o"), ("val_", "-s"), ("", "-")):
            col = f"{prefix}{key}"
            if col in history[0] and (prefix or key == "lr"):
                ax.plot(epochs, [h[col] for h in history], style, ms=3, label=prefix.rstrip("_") or key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if key != "lr":
            ax.legend()
    save_figure(fig, path)


def plot_confusion_matrix(cm: Tensor, classes: Sequence[str], path: str | os.PathLike) -> None:
    """Row-normalised confusion matrix with counts; rows are true classes."""
    cm = torch.as_tensor(cm)
    frac = cm.double() / cm.sum(1, keepdim=True).clamp_min(1)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * k, 0.8 + 0.55 * k))
    ax.imshow(frac.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix (accuracy {float(cm.diag().sum()) / max(1, int(cm.sum())):.4f})")
    save_figure(fig, path)


def plot_predictions(images: Tensor, target: Tensor, probs: Tensor, classes: Sequence[str],
                     path: str | os.PathLike, cols: int = 8) -> None:
    """A grid of images titled with prediction and probability; wrong ones in red.
    Clips (N, T, C, H, W) are shown as their first, middle and last frames side by side."""
    if images.ndim == 5:
        images = torch.cat([images[:, 0], images[:, images.shape[1] // 2], images[:, -1]], dim=-1)
    n = len(images)
    if n == 0:
        return
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.55 * cols, 1.75 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, t, p in zip(axes.flat, images, target, probs):
        img = img.permute(1, 2, 0).squeeze(-1).numpy()
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        c = int(p.argmax())
        ax.set_title(f"{classes[c]} {float(p[c]):.2f}", fontsize=7, color="black" if c == int(t) else "red")
    save_figure(fig, path)


def plot_curves(histories: dict[str, Sequence[dict[str, float]]], keys: Sequence[tuple[str, str]],
                path: str | os.PathLike, title: str = "", dashed: Callable[[str], bool] | None = None) -> None:
    """One panel per metric ``(key, panel title)``, one line per run (``histories``: label -> history)."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, (key, name) in zip(axes[0], keys):
        for label, hist in histories.items():
            pts = [(h["epoch"], h[key]) for h in hist if key in h]
            if pts:
                ax.plot(*zip(*pts), "--" if dashed and dashed(label) else "-", label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if key == "lr":
            ax.set_yscale("log")
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    save_figure(fig, path)


def plot_bars(values: dict[str, float], path: str | os.PathLike, ylabel: str = "", title: str = "") -> None:
    """Labelled bars with their values written on top."""
    fig, ax = plt.subplots(figsize=(1.2 + 1.4 * len(values), 3.4))
    bars = ax.bar(list(values), list(values.values()), color="#4c72b0")
    ax.bar_label(bars, fmt="%.4f", fontsize=8)
    lo = min(values.values(), default=0)
    ax.set_ylim(max(0.0, lo - 0.1), min(1.0, max(values.values(), default=1) + 0.05))
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, path)


def plot_augmented(rows: Sequence[Sequence[tuple[Tensor, Tensor | None, Tensor | None]]], path: str | os.PathLike,
                   title: str = "") -> None:
    """A grid: one row per source image, its original first and then its augmented versions. Each cell is
    ``(image (C, H, W) in pixel units 0-255, mask (H, W) or None, boxes (n, 4) x1 y1 x2 y2 or None)``;
    masks are overlaid in colour, boxes drawn as rectangles."""
    from matplotlib.patches import Rectangle

    ncol = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(1.6 * ncol, 1.7 * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(ncol):
            ax = axes[i][j]
            ax.axis("off")
            if j >= len(row):
                continue
            img, mask, boxes = row[j]
            img = (img.detach().float().clamp(0, 255).cpu() / 255).numpy()
            if img.shape[0] == 1:
                ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img[:3].transpose(1, 2, 0))
            if mask is not None and bool((mask > 0).any()):
                m = mask.detach().cpu().float()
                ax.imshow(torch.where(m > 0, m, torch.nan).numpy(), cmap="tab10", alpha=0.45, vmin=0, vmax=9,
                          interpolation="nearest")
            for x1, y1, x2, y2 in ([] if boxes is None else boxes.tolist()):
                # pixel edges -> imshow's coordinates (pixel centres at integers)
                ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="lime", lw=1.2))
            ax.set_title("original" if j == 0 else f"#{j}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, path)
