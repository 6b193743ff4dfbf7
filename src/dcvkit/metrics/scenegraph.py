"""Scene-graph recall, as Neural Motifs and Scene-Graph-Benchmark.pytorch define it, written here (the sgbench
package pins NumPy < 2).

A prediction scores every candidate pair (subject, object) of its objects with one probability per predicate
(background excluded). A triple's score is ``subject score * object score * predicate probability``.

* **R@K** (graph constraint): each pair contributes one triple, its best predicate; the K best triples of the
  image are kept. **ngR@K** (no graph constraint): every (pair, predicate) is a triple; the K best are kept.
* A ground-truth triple ``(s, o, p)`` is recalled when a kept triple has predicate ``p``, the classes of ``s``
  and ``o``, and boxes overlapping theirs at IoU >= ``iou`` (both). Identical ground-truth triples count once.
* Recall is per image (recalled / ground-truth triples), averaged over the images that have triples.
* **mR@K**: per predicate, its recall in each image where it occurs, averaged over those images; then the
  mean over the predicates that occur (the long tail weighs as much as the head).
* **zsR@K**: recall of the ground-truth triples whose (subject class, predicate, object class) never occurs
  in training (``seen``), averaged over the images that have such triples.

Ties are broken by the candidates' order (pairs as given, predicates in index order): the sort is stable.

>>> import numpy as np
>>> t = GraphTruth(np.array([[0, 0, 10, 10], [20, 0, 30, 10.]]), np.array([0, 1]), np.array([[0, 1, 0]]))
>>> p = GraphPrediction(t.boxes, t.labels, np.ones(2), np.array([[0, 1], [1, 0]]), np.array([[.9, .1], [.2, .8]]))
>>> graph_recall([t], [p], num_predicates=2, ks=(1,))["R@1"]
1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dcvkit.metrics.tracking import box_iou


@dataclass
class GraphTruth:
    """One image's ground truth: boxes (n, 4) x1 y1 x2 y2, labels (n,), triples (m, 3) subject, object,
    predicate (indices into the objects and the predicates)."""

    boxes: np.ndarray
    labels: np.ndarray
    triples: np.ndarray


@dataclass
class GraphPrediction:
    """One image's prediction: objects (boxes (k, 4), labels (k,), scores (k,)), candidate pairs (P, 2) and
    their predicate probabilities (P, R), background excluded."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    pairs: np.ndarray
    predicate_scores: np.ndarray


def ranked_triples(pred: GraphPrediction, k: int, graph_constraint: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best triples (k', 3) subject, object, predicate and their scores, best first (stable)."""
    if len(pred.pairs) == 0:
        return np.zeros((0, 3), np.int64), np.zeros(0)
    ps = np.asarray(pred.predicate_scores, np.float64).reshape(len(pred.pairs), -1)
    pairs = np.asarray(pred.pairs, np.int64)
    obj = np.asarray(pred.scores, np.float64)
    if graph_constraint:
        best = ps.argmax(1)  # the first of equal maxima
        scores = obj[pairs[:, 0]] * obj[pairs[:, 1]] * ps[np.arange(len(ps)), best]
        cand = np.column_stack([pairs, best])
    else:
        r = ps.shape[1]
        scores = ((obj[pairs[:, 0]] * obj[pairs[:, 1]])[:, None] * ps).reshape(-1)
        cand = np.column_stack([np.repeat(pairs, r, axis=0), np.tile(np.arange(r), len(pairs))])
    order = np.argsort(-scores, kind="stable")[:k]
    return cand[order], scores[order]


def triple_hits(truth: GraphTruth, pred: GraphPrediction, k: int, graph_constraint: bool = True,
                iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(the image's distinct ground-truth triples (m', 3), whether each is recalled among the ``k`` best)."""
    gt = np.unique(np.asarray(truth.triples, np.int64).reshape(-1, 3), axis=0)
    top, _ = ranked_triples(pred, k, graph_constraint)
    if len(gt) == 0 or len(top) == 0:
        return gt, np.zeros(len(gt), bool)
    ok = box_iou(pred.boxes, truth.boxes) >= iou  # (k objects, n objects)
    ok &= np.asarray(pred.labels)[:, None] == np.asarray(truth.labels)[None, :]
    hit = (ok[top[:, 0]][:, gt[:, 0]] & ok[top[:, 1]][:, gt[:, 1]] & (top[:, 2:3] == gt[None, :, 2]))
    return gt, hit.any(0)


def graph_recall(truths: Sequence[GraphTruth], preds: Sequence[GraphPrediction], num_predicates: int,
                 ks: Sequence[int] = (20, 50, 100), iou: float = 0.5, seen: set[tuple[int, int, int]] | None = None
                 ) -> dict[str, float | list[float | None]]:
    """R@K, ngR@K, mR@K, ngmR@K, zsR@K (when ``seen`` triples of (subject class, object class, predicate) are
    given) and, per K, each predicate's recall (``per_predicate@K``: None for a predicate that never occurs).
    Keys ``"R@50"``, ``"mR@50"``, ... (see the module docstring)."""
    out: dict[str, float | list[float | None]] = {}
    for constrained, prefix in ((True, ""), (False, "ng")):
        for k in ks:
            per_image, zero_shot = [], []
            per_pred: list[list[float]] = [[] for _ in range(num_predicates)]
            for t, p in zip(truths, preds):
                gt, hit = triple_hits(t, p, k, constrained, iou)
                if len(gt) == 0:
                    continue
                per_image.append(hit.mean())
                for q in np.unique(gt[:, 2]):
                    per_pred[q].append(hit[gt[:, 2] == q].mean())
                if seen is not None:
                    lab = np.asarray(t.labels)
                    unseen = np.array([(lab[s], lab[o], q) not in seen for s, o, q in gt])
                    if unseen.any():
                        zero_shot.append(hit[unseen].mean())
            recalls = [float(np.mean(r)) if r else None for r in per_pred]
            present = [r for r in recalls if r is not None]
            out[f"{prefix}R@{k}"] = float(np.mean(per_image)) if per_image else 0.0
            out[f"{prefix}mR@{k}"] = float(np.mean(present)) if present else 0.0
            if not constrained:
                continue
            out[f"per_predicate@{k}"] = recalls
            if seen is not None:
                out[f"zsR@{k}"] = float(np.mean(zero_shot)) if zero_shot else None  # type: ignore[assignment]
    return out


__all__ = ["GraphTruth", "GraphPrediction", "ranked_triples", "triple_hits", "graph_recall"]
