"""Detection pictures: labelled boxes with scores on an image (PNG at the image's own resolution), a grid
of test images with truth and predictions, and per-class precision-recall curves."""

from __future__ import annotations

import io
import os
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from dcvkit.io import atomic_write
from dcvkit.viz.plots import plt, save_figure
from dcvkit.viz.segment import colours


def _rgb(image: Tensor) -> np.ndarray:
    a = image.permute(1, 2, 0).numpy()
    return np.repeat(a, 3, -1) if a.shape[-1] == 1 else a


def draw_detections(image: Tensor, det, classes: Sequence[str], path: str | os.PathLike | None = None,
                    scale: int | None = None) -> Image.Image:
    """Draw ``det`` (:class:`~dcvkit.models.detect.postprocess.Detections`, image pixels) on a uint8 (C, H, W)
    image: one colour per class, "class 0.93" above each box. Small images are enlarged (``scale``, default
    so the short side is at least 384 px) so the labels stay readable; boxes are scaled with them."""
    arr = _rgb(image)
    h, w = arr.shape[:2]
    scale = scale or max(1, int(np.ceil(384 / min(h, w))))
    im = Image.fromarray(arr).resize((w * scale, h * scale), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default()
    pal = colours(len(classes) + 1)
    for b, s, c in zip(det.boxes.tolist(), det.scores.tolist(), det.labels.tolist()):
        colour = tuple(int(v) for v in pal[int(c) + 1])
        x1, y1, x2, y2 = (v * scale for v in b)
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=colour, width=2)
        text = f"{classes[int(c)]} {s:.2f}"
        tw = draw.textlength(text, font=font)
        ty = max(0, y1 - 12)
        draw.rectangle([x1, ty, x1 + tw + 4, ty + 12], fill=colour)
        draw.text((x1 + 2, ty), text, fill=(255, 255, 255) if sum(colour) < 400 else (0, 0, 0), font=font)
    if path is not None:
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        atomic_write(path, buf.getvalue())
    return im


def plot_detection_grid(images: Tensor, dets: Sequence[Any], classes: Sequence[str], path: str | os.PathLike,
                        gt: Sequence[tuple[Tensor, Tensor]] | None = None, cols: int = 4) -> None:
    """Images with predicted boxes (solid, labelled) and ground truth (dashed white), ``cols`` per row."""
    n = len(images)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    pal = colours(len(classes) + 1) / 255
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        ax = axes.flat[i]
        ax.imshow(_rgb(images[i]), interpolation="nearest")
        if gt is not None:
            for b in gt[i][0].tolist():
                ax.add_patch(plt.Rectangle((b[0] - 0.5, b[1] - 0.5), b[2] - b[0], b[3] - b[1], fill=False,
                                           edgecolor="white", linestyle="--", linewidth=0.8))
        d = dets[i]
        for b, s, c in zip(d.boxes.tolist(), d.scores.tolist(), d.labels.tolist()):
            if s < 0.3:
                continue
            col = pal[int(c) + 1]
            ax.add_patch(plt.Rectangle((b[0] - 0.5, b[1] - 0.5), b[2] - b[0], b[3] - b[1], fill=False,
                                       edgecolor=col, linewidth=1.5))
            ax.text(b[0], b[1] - 1, f"{classes[int(c)]} {s:.2f}", fontsize=6, color="white",
                    bbox={"facecolor": col, "pad": 0.5, "linewidth": 0})
    fig.suptitle("predictions (score >= 0.3, solid) and ground truth (dashed)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def plot_pr_curves(result: dict[str, Any], path: str | os.PathLike, title: str = "precision-recall, IoU 0.5") -> None:
    """Per-class precision-recall curves at IoU 0.5 (COCO's 101 recall points), AP@0.5 in the legend."""
    recall = np.asarray(result["pr_curves"]["recall"])
    fig, ax = plt.subplots(figsize=(7, 5))
    pal = colours(len(result["per_class"]) + 1) / 255
    for k, (c, prec) in enumerate(zip(result["per_class"], result["pr_curves"]["precision"])):
        ap = c["ap50"] if c["ap50"] is not None else 0.0
        ax.plot(recall, prec, color=pal[k + 1], label=f"{c['class']} (AP50 {ap:.2f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{title}; mAP@0.5 {result['map50']:.3f}, mAP@[.5:.95] {result['map']:.3f}", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


__all__ = ["draw_detections", "plot_detection_grid", "plot_pr_curves"]
