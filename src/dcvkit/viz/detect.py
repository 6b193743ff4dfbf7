"""Detection pictures: labelled boxes with scores on an image (PNG at the image's own resolution), a grid
of test images with truth and predictions, and per-class precision-recall curves."""

from __future__ import annotations

import io
import os
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.ops import nms

from dcvkit.io import atomic_write
from dcvkit.viz.plots import plt, save_figure
from dcvkit.viz.segment import colours


def _rgb(image: Tensor) -> np.ndarray:
    a = image.permute(1, 2, 0).numpy()
    return np.repeat(a, 3, -1) if a.shape[-1] == 1 else a


DISPLAY_SCORE = 0.3  # what a picture shows; the evaluation and predictions.json keep every box above score_thresh
CLAIM_IOU = 0.7  # a box overlapping a better one of another class this much is a second guess at the same object


def displayed(det, min_score: float = DISPLAY_SCORE, all_classes: bool = False, claim_iou: float = CLAIM_IOU):
    """The detections a picture shows, in drawing order: those scoring at least ``min_score``; one class per
    object unless ``all_classes`` (a box overlapping a higher-scoring box of another class by IoU above
    ``claim_iou`` is the detector's second guess about an object already claimed: torchvision's class-agnostic
    ``nms`` leaves it out); the lowest score first, so the best boxes and their labels are drawn last, on top."""
    det = det.select(det.scores >= min_score)
    if not all_classes and len(det) > 1:
        det = det.select(nms(det.boxes.float(), det.scores.float(), claim_iou))
    return det.select(torch.argsort(det.scores, stable=True))


def draw_detections(image: Tensor, det, classes: Sequence[str], path: str | os.PathLike | None = None,
                    scale: int | None = None, min_score: float = DISPLAY_SCORE, all_classes: bool = False
                    ) -> Image.Image:
    """Draw ``det`` (:class:`~dcvkit.models.detect.postprocess.Detections`, image pixels) on a uint8 (C, H, W)
    image: one colour per class, "class 0.93" above each box, the boxes :func:`displayed` picks (scoring at
    least ``min_score``, one class per object unless ``all_classes``), the best drawn last, on top. Small images
    are enlarged (``scale``, default so the short side is at least 384 px) so the labels stay readable; boxes
    are scaled with them."""
    det = displayed(det, min_score, all_classes)
    arr = _rgb(image)
    h, w = arr.shape[:2]
    scale = scale or max(1, int(np.ceil(384 / min(h, w))))
    im = Image.fromarray(arr).resize((w * scale, h * scale), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default()
    pal = colours(len(classes) + 1)
    rows = list(zip(det.boxes.tolist(), det.scores.tolist(), det.labels.tolist()))
    texts = [f"{classes[int(c)]} {s:.2f}" for _, s, c in rows]
    places = _label_places([[v * scale for v in b] for b, _, _ in rows],
                           [draw.textlength(t, font=font) + 4 for t in texts], im.size)
    for (b, _, c), text, (lx, ly, lw) in zip(rows, texts, places):
        colour = tuple(int(v) for v in pal[int(c) + 1])
        x1, y1, x2, y2 = (v * scale for v in b)
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=colour, width=2)
        draw.rectangle([lx, ly, lx + lw, ly + 12], fill=colour)
        draw.text((lx + 2, ly), text, fill=(255, 255, 255) if sum(colour) < 400 else (0, 0, 0), font=font)
    if path is not None:
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        atomic_write(path, buf.getvalue())
    return im


def _label_places(boxes: list[list[float]], widths: list[float], size: tuple[int, int]
                  ) -> list[tuple[float, float, float]]:
    """Where each box's 12-px label goes (x, y, width), for boxes in drawing order (the best last): the best
    box's label takes the place above its corner; a lower-scoring one moves inside its box's top, then below
    its bottom, when that place is taken by a better label (else it stays, under the better one)."""
    placed: list[tuple[float, float, float, float]] = []
    out: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * len(boxes)
    for i in range(len(boxes) - 1, -1, -1):  # the best first
        x1, y1, _, y2 = boxes[i]
        w = widths[i]
        spots = [max(0.0, y1 - 12), y1 + 2, min(y2 + 1, size[1] - 12)]
        free = [y for y in spots if not any(x1 < px2 and px1 < x1 + w and y < py2 and py1 < y + 12
                                            for px1, py1, px2, py2 in placed)]
        y = free[0] if free else spots[0]
        placed.append((x1, y, x1 + w, y + 12))
        out[i] = (x1, y, w)
    return out


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
        d = displayed(dets[i])
        for b, s, c in zip(d.boxes.tolist(), d.scores.tolist(), d.labels.tolist()):
            col = pal[int(c) + 1]
            ax.add_patch(plt.Rectangle((b[0] - 0.5, b[1] - 0.5), b[2] - b[0], b[3] - b[1], fill=False,
                                       edgecolor=col, linewidth=1.5))
            ax.text(b[0], b[1] - 1, f"{classes[int(c)]} {s:.2f}", fontsize=6, color="white",
                    bbox={"facecolor": col, "pad": 0.5, "linewidth": 0})
    fig.suptitle(f"predictions (score >= {DISPLAY_SCORE}, one class per object, solid) and ground truth (dashed)",
                 fontsize=9)
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


__all__ = ["draw_detections", "displayed", "plot_detection_grid", "plot_pr_curves", "DISPLAY_SCORE", "CLAIM_IOU"]
