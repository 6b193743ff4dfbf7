"""FashionScenes with a scene graph per image: relations between items that a model must see to tell.

The scenes are :mod:`dcvkit.data.scenes`' (Fashion-MNIST items on textured backgrounds; train items for
training scenes, test items for test scenes), drawn with tints from a palette of eight colours and more
overlap, so that relations of three kinds exist:

* **geometric** (boxes tell them): ``left of``, ``right of``, ``above``, ``below`` (the dominant axis of the
  centres' offset, for items within ``reach`` of each other), ``near`` (boxes closer than ``near``),
  ``overlapping`` (boxes intersect, neither item hides the other's pixels);
* **depth** (boxes cannot tell them): ``in front of`` / ``behind``: the subject hides at least
  ``min_hidden`` pixels of the object's whole shape (the later-painted item is on top: the paint order);
* **appearance**: ``same colour as`` (the same palette tint), and two rare class-conditioned ones:
  ``matches`` (a top - T-shirt/top, pullover, shirt, coat - of a trouser's colour, subject the top) and
  ``pairs with`` (two footwear items of one class: a pair of sandals, sneakers or ankle boots).

Each ordered pair (subject, object) gets at most one predicate, the first that holds in the order
:data:`PREDICATES` lists the kinds: depth, matches, pairs with, same colour as, overlapping, near, the
direction. Symmetric facts are stated both ways (``a same colour as b`` and ``b same colour as a``; ``a left
of b`` and ``b right of a``), so every triple is a function of the image alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dcvkit.data.core import ImageTensors
from dcvkit.data.scenes import SceneConfig, _scene, background

#: the eight tints (r, g, b) and their names; bright enough for every class's texture to show
PALETTE = ((1.0, 0.4, 0.4), (0.4, 1.0, 0.4), (0.45, 0.45, 1.0), (1.0, 1.0, 0.4), (1.0, 0.4, 1.0), (0.4, 1.0, 1.0),
           (1.0, 1.0, 1.0), (1.0, 0.7, 0.4))
COLOURS = ("red", "green", "blue", "yellow", "magenta", "cyan", "white", "orange")

GEOMETRIC = ("left of", "right of", "above", "below", "near", "overlapping")
DEPTH = ("in front of", "behind")
APPEARANCE = ("same colour as", "matches", "pairs with")
PREDICATES = (*GEOMETRIC, *DEPTH, *APPEARANCE)
KINDS = {**{p: "geometric" for p in GEOMETRIC}, **{p: "depth" for p in DEPTH}, **{p: "appearance" for p in APPEARANCE}}

TOPS = ("T-shirt/top", "Pullover", "Shirt", "Coat")
FOOTWEAR = ("Sandal", "Sneaker", "Ankle boot")


@dataclass(frozen=True)
class GraphSceneConfig:
    """How the graph scenes are drawn and related (sides in pixels at ``size``)."""

    size: int = 128
    min_objects: int = 3
    max_objects: int = 7
    max_overlap: float = 0.4
    min_hidden: int = 10     # pixels of the object's shape the subject must hide for "in front of"
    near: float = 0.08       # "near": boxes closer than this fraction of the side
    reach: float = 0.4       # directions: only for boxes closer than this fraction of the side

    def scenes(self) -> SceneConfig:
        return SceneConfig(size=self.size, min_objects=self.min_objects, max_objects=self.max_objects,
                           max_overlap=self.max_overlap, palette=PALETTE)


def hidden_pixels(whole: list[dict], instances: torch.Tensor) -> np.ndarray:
    """(n, n) int: ``[a, b]`` = pixels of object ``b``'s whole shape (before occlusion) where object ``a`` is
    what shows. Only a later-painted ``a`` can be nonzero."""
    n = len(whole)
    out = np.zeros((n, n), np.int64)
    inst = instances.numpy()
    for b, w in enumerate(whole):
        m = w["mask"].numpy()
        h, wd = m.shape
        shown = inst[w["y0"]:w["y0"] + h, w["x0"]:w["x0"] + wd][m]
        counts = np.bincount(shown.astype(np.int64), minlength=n + 1)[1:]
        counts[b] = 0
        out[:, b] = counts
    return out


def relations(boxes: np.ndarray, labels: np.ndarray, tints: np.ndarray, hidden: np.ndarray, classes: list[str],
              cfg: GraphSceneConfig = GraphSceneConfig()) -> np.ndarray:
    """(m, 3) subject, object, predicate index into :data:`PREDICATES` (see the module docstring for the
    rules and their order)."""
    n = len(boxes)
    names = [classes[int(c)] for c in labels]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    out = []
    for s in range(n):
        for o in range(n):
            if s == o:
                continue
            gap_x = max(boxes[o, 0] - boxes[s, 2], boxes[s, 0] - boxes[o, 2], 0.0)
            gap_y = max(boxes[o, 1] - boxes[s, 3], boxes[s, 1] - boxes[o, 3], 0.0)
            intersect = (min(boxes[s, 2], boxes[o, 2]) > max(boxes[s, 0], boxes[o, 0])
                         and min(boxes[s, 3], boxes[o, 3]) > max(boxes[s, 1], boxes[o, 1]))
            if hidden[s, o] >= cfg.min_hidden:
                p = "in front of"
            elif hidden[o, s] >= cfg.min_hidden:
                p = "behind"
            elif tints[s] == tints[o] and names[s] in TOPS and names[o] == "Trouser":
                p = "matches"
            elif names[s] == names[o] and names[s] in FOOTWEAR:
                p = "pairs with"
            elif tints[s] == tints[o]:
                p = "same colour as"
            elif intersect:
                p = "overlapping"
            elif max(gap_x, gap_y) < cfg.near * cfg.size:
                p = "near"
            elif max(gap_x, gap_y) < cfg.reach * cfg.size:
                dx, dy = cx[s] - cx[o], cy[s] - cy[o]
                p = ("left of" if dx < 0 else "right of") if abs(dx) >= abs(dy) else ("above" if dy < 0 else "below")
            else:
                continue
            out.append((s, o, PREDICATES.index(p)))
    return np.asarray(out, np.int64).reshape(-1, 3)


def graph_scene(items: ImageTensors, cfg: GraphSceneConfig, seed: int, i: int) -> dict:
    """Scene ``i`` (a function of ``(seed, i)`` alone): image (3, S, S) uint8, instances (S, S), boxes (n, 4),
    labels (n,), tints (n,) palette indices, hidden (n, n) pixels, relations (m, 3)."""
    g = torch.Generator().manual_seed(seed * 7_919 + i * 104_729 + 5)
    whole: list[dict] = []
    image, _cm, inst, boxes, labels, _src = _scene(items, cfg.scenes(), background(cfg.size, g), g, record=whole)
    tints = np.asarray([w["tint"] for w in whole], np.int64)
    hidden = hidden_pixels(whole, inst)
    b, lab = boxes.numpy().astype(np.float64), labels.numpy()
    return {"image": image, "instances": inst, "boxes": b, "labels": lab, "tints": tints, "hidden": hidden,
            "whole": whole, "relations": relations(b, lab, tints, hidden, list(items.classes), cfg)}


__all__ = ["GraphSceneConfig", "graph_scene", "relations", "hidden_pixels", "PREDICATES", "GEOMETRIC", "DEPTH",
           "APPEARANCE", "KINDS", "PALETTE", "COLOURS", "TOPS", "FOOTWEAR"]
