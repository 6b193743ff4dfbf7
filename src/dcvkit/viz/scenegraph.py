"""Scene graphs as pictures: the image with its objects' boxes numbered, and beside it the graph (one node per
object, on a circle in the order of the objects' directions from the image's centre, so the graph keeps the
picture's layout without nodes on top of each other; an arrow subject -> object per triple, labelled with
the predicate and its score); a grid of them for a split; per-predicate recall bars for each protocol."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dcvkit.viz.track import id_colour


def _layout(boxes: np.ndarray, used: Sequence[int], w: int, h: int) -> dict[int, tuple[float, float]]:
    """Node positions: on an ellipse inside the panel, ordered by each box centre's angle around the image's
    centre."""
    if len(used) == 1:
        return {used[0]: (w / 2, h / 2)}
    angle = {j: np.arctan2((boxes[j][1] + boxes[j][3]) / 2 - h / 2, (boxes[j][0] + boxes[j][2]) / 2 - w / 2)
             for j in used}
    order = sorted(used, key=lambda j: angle[j])
    start = angle[order[0]]
    return {j: (w / 2 + 0.36 * w * np.cos(start + 2 * np.pi * k / len(order)),
                h / 2 + 0.36 * h * np.sin(start + 2 * np.pi * k / len(order))) for k, j in enumerate(order)}


def _panel(ax_img, ax_graph, image: np.ndarray, boxes: np.ndarray, names: Sequence[str],
           triples: Sequence[tuple[int, int, str, float]]) -> None:
    from matplotlib.patches import FancyArrowPatch, Rectangle

    h, w = image.shape[:2]
    ax_img.imshow(image)
    used = sorted({j for s, o, _, _ in triples for j in (s, o)})
    for j in used:
        x1, y1, x2, y2 = boxes[j]
        c = np.array(id_colour(j + 1)) / 255
        ax_img.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=c, linewidth=1.5))
        ax_img.text(x1, y1, f"{j + 1} {names[j]}", color="white", fontsize=6, va="bottom",
                    bbox={"facecolor": c, "alpha": 0.8, "pad": 0.5, "linewidth": 0})
    ax_graph.set_xlim(0, w)
    ax_graph.set_ylim(h, 0)
    ax_graph.set_facecolor("#f6f6f6")
    centre = _layout(boxes, used, w, h)
    for k, (s, o, pred, score) in enumerate(triples):
        a, b = centre[s], centre[o]
        bend = 0.25  # one side of the line from subject to object: a pair related both ways gets two arcs
        ax_graph.add_patch(FancyArrowPatch(a, b, connectionstyle=f"arc3,rad={bend}", arrowstyle="-|>",
                                           mutation_scale=8, color="#555", linewidth=0.8, shrinkA=9, shrinkB=9))
        mx, my = (a[0] + b[0]) / 2 - bend * (b[1] - a[1]) / 2, (a[1] + b[1]) / 2 + bend * (b[0] - a[0]) / 2
        ax_graph.text(mx, my, f"{pred} {score:.2f}", fontsize=5, ha="center", va="center", color="#222",
                      bbox={"facecolor": "white", "alpha": 0.8, "pad": 0.3, "linewidth": 0})
    for j, (x, y) in centre.items():
        c = np.array(id_colour(j + 1)) / 255
        ax_graph.text(x, y, f"{j + 1} {names[j]}", fontsize=6, ha="center", va="center", color="white",
                      bbox={"facecolor": c, "boxstyle": "round", "pad": 0.3, "linewidth": 0})
    for ax in (ax_img, ax_graph):
        ax.set_xticks([])
        ax.set_yticks([])


def draw_graph(image: np.ndarray, boxes: np.ndarray, names: Sequence[str],
               triples: Sequence[tuple[int, int, str, float]], path: str | os.PathLike) -> Path:
    """``image`` (H, W, 3) uint8 with the boxes of the objects the ``triples`` (subject, object, predicate,
    score) name, the graph beside it; saved as a PNG."""
    from dcvkit.viz.plots import plt, save_figure

    h, w = image.shape[:2]
    fig, (a, b) = plt.subplots(1, 2, figsize=(2 * 4 * min(2.0, w / h), 4))
    _panel(a, b, image, np.asarray(boxes).reshape(-1, 4), names, triples)
    a.set_title(f"{len(triples)} triples", fontsize=8)
    b.set_title("scene graph", fontsize=8)
    save_figure(fig, path)
    return Path(path)


def plot_graph_grid(images, preds: Sequence[Any], classes: Sequence[str], predicates: Sequence[str],
                    path: str | os.PathLike, top: int = 6, title: str = "") -> None:
    """Up to four images (N, 3, H, W) uint8 with the ``top`` best triples of their predictions."""
    from dcvkit.metrics.scenegraph import ranked_triples
    from dcvkit.viz.plots import plt, save_figure

    n = min(4, len(preds))
    if n == 0:
        return
    fig, axes = plt.subplots(n, 2, figsize=(7, 3.4 * n), squeeze=False)
    for i in range(n):
        p = preds[i]
        t, s = ranked_triples(p, top)
        triples = [(int(a), int(b), predicates[int(q)], float(sc)) for (a, b, q), sc in zip(t, s)]
        _panel(axes[i, 0], axes[i, 1], images[i].permute(1, 2, 0).numpy(), p.boxes,
               [classes[int(c)] for c in p.labels], triples)
    if title:
        fig.suptitle(f"{title}: the {top} best triples per image", fontsize=9)
    save_figure(fig, path)


def plot_per_predicate(result: dict[str, Any], path: str | os.PathLike, k: int = 50) -> None:
    """Recall@``k`` of each predicate, one bar per protocol (the long tail made visible)."""
    from dcvkit.viz.plots import plt, save_figure

    preds = result["predicates"]
    protocols = list(result["protocols"])
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(preds)), 3.6))
    width = 0.8 / max(1, len(protocols))
    x = np.arange(len(preds))
    for j, name in enumerate(protocols):
        rows = result["protocols"][name]["per_predicate"]
        ax.bar(x + j * width, [r[f"R@{k}"] or 0 for r in rows], width, label=name)
    counts = result["protocols"][protocols[0]]["per_predicate"]
    ax.set_xticks(x + width * (len(protocols) - 1) / 2,
                  [f"{p}\n({r['triples']})" for p, r in zip(preds, counts)], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel(f"recall@{k}")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title(f"{result['model']}: recall per predicate (test triples in brackets)", fontsize=9)
    save_figure(fig, path)


__all__ = ["draw_graph", "plot_graph_grid", "plot_per_predicate"]
