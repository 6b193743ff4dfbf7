"""Scene-graph recall on hand-made graphs: the graph constraint on and off, a triple counted once, ties,
mR@K worked on paper, zero-shot recall, SGDet's box matching; the ground truth as predictions scores 1."""

from __future__ import annotations

import numpy as np
import pytest

from dcvkit.metrics.scenegraph import GraphPrediction, GraphTruth, graph_recall, ranked_triples, triple_hits

BOXES = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [0, 20, 10, 30]], float)
LABELS = np.array([0, 1, 2])


def _pred(pairs, scores, boxes=BOXES, labels=LABELS, obj=None):
    return GraphPrediction(boxes, labels, np.ones(len(boxes)) if obj is None else np.asarray(obj, float),
                           np.asarray(pairs), np.asarray(scores, float))


def test_graph_constraint_keeps_one_predicate_per_pair():
    """(0, 1) is truly predicate 1, which the model ranks second for that pair: with the graph constraint the
    pair gives only predicate 0 (a miss); without it, both triples are candidates (a hit at K >= 2)."""
    truth = GraphTruth(BOXES, LABELS, np.array([[0, 1, 1]]))
    pred = _pred([[0, 1]], [[0.6, 0.4]])
    r = graph_recall([truth], [pred], num_predicates=2, ks=(1, 2))
    assert r["R@1"] == 0.0 and r["R@2"] == 0.0
    assert r["ngR@1"] == 0.0 and r["ngR@2"] == 1.0


def test_a_triple_is_counted_once():
    """A ground-truth triple listed twice counts once; predicting it twice does not count twice."""
    truth = GraphTruth(BOXES, LABELS, np.array([[0, 1, 0], [0, 1, 0], [1, 2, 1]]))
    pred = _pred([[0, 1], [0, 1], [1, 2]], [[0.9, 0.1], [0.9, 0.1], [0.2, 0.8]])
    gt, hit = triple_hits(truth, pred, k=2)
    assert len(gt) == 2 and hit.tolist() == [True, False]  # the 2 slots go to the duplicated prediction
    assert graph_recall([truth], [pred], 2, ks=(2, 3))["R@3"] == 1.0
    assert graph_recall([truth], [pred], 2, ks=(2,))["R@2"] == 0.5


def test_ties_at_k_go_to_the_earlier_candidate():
    truth = GraphTruth(BOXES, LABELS, np.array([[1, 2, 0]]))
    tied = _pred([[0, 1], [1, 2]], [[0.5, 0.5], [0.5, 0.5]])
    top, scores = ranked_triples(tied, 1)
    assert top.tolist() == [[0, 1, 0]] and scores.tolist() == [0.5]  # first pair, first predicate
    assert graph_recall([truth], [tied], 2, ks=(1, 2))["R@1"] == 0.0
    assert graph_recall([truth], [tied], 2, ks=(2,))["R@2"] == 1.0


def test_mean_recall_on_paper():
    """Image A: predicate 0 three times (two recalled), predicate 1 once (recalled); image B: predicate 0 once
    (missed). R = mean(3/4, 0) = 0.375; per predicate: p0 = mean(2/3, 0) = 1/3, p1 = 1; mR = 2/3."""
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [0, 20, 10, 30], [20, 20, 30, 30]], float)
    labels = np.array([0, 0, 0, 0])
    a = GraphTruth(boxes, labels, np.array([[0, 1, 0], [1, 2, 0], [2, 3, 0], [0, 3, 1]]))
    pa = GraphPrediction(boxes, labels, np.ones(4), np.array([[0, 1], [1, 2], [2, 3], [0, 3]]),
                         np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.3, 0.7]]))
    b = GraphTruth(boxes, labels, np.array([[0, 1, 0]]))
    pb = GraphPrediction(boxes, labels, np.ones(4), np.array([[0, 1]]), np.array([[0.4, 0.6]]))
    r = graph_recall([a, b], [pa, pb], num_predicates=2, ks=(50,))
    assert r["R@50"] == pytest.approx(0.375)
    assert r["per_predicate@50"] == pytest.approx([1 / 3, 1.0])
    assert r["mR@50"] == pytest.approx(2 / 3)


def test_zero_shot_recall_counts_only_unseen_triples():
    truth = GraphTruth(BOXES, LABELS, np.array([[0, 1, 0], [1, 2, 1]]))
    pred = _pred([[0, 1], [1, 2]], [[0.9, 0.1], [0.9, 0.1]])  # (0, 1, 0) recalled, (1, 2, 1) missed
    seen = {(0, 1, 0)}  # classes 1 and 2 were never related by predicate 1 in training
    r = graph_recall([truth], [pred], 2, ks=(50,), seen=seen)
    assert r["R@50"] == 0.5 and r["zsR@50"] == 0.0
    r = graph_recall([truth], [pred], 2, ks=(50,), seen={(1, 2, 1)})
    assert r["zsR@50"] == 1.0


def test_sgdet_needs_both_boxes_at_iou_half_and_the_classes():
    truth = GraphTruth(BOXES, LABELS, np.array([[0, 1, 0]]))
    shifted = BOXES + np.array([[6, 0, 6, 0], [0, 0, 0, 0], [0, 0, 0, 0]])  # IoU 4/16 = 0.25 with the truth
    assert graph_recall([truth], [_pred([[0, 1]], [[1.0, 0.0]], boxes=shifted)], 2, ks=(5,))["R@5"] == 0.0
    nudged = BOXES + np.array([[2, 0, 2, 0], [0, 0, 0, 0], [0, 0, 0, 0]])  # IoU 8/12 = 0.67
    assert graph_recall([truth], [_pred([[0, 1]], [[1.0, 0.0]], boxes=nudged)], 2, ks=(5,))["R@5"] == 1.0
    wrong = _pred([[0, 1]], [[1.0, 0.0]], labels=np.array([0, 2, 2]))
    assert graph_recall([truth], [wrong], 2, ks=(5,))["R@5"] == 0.0


def test_object_scores_rank_the_triples():
    truth = GraphTruth(BOXES, LABELS, np.array([[1, 2, 0]]))
    pred = _pred([[0, 1], [1, 2]], [[0.9, 0.1], [0.8, 0.2]], obj=[0.1, 1.0, 1.0])
    assert ranked_triples(pred, 1)[0].tolist() == [[1, 2, 0]]  # 0.8 beats 0.1 * 1.0 * 0.9
    assert graph_recall([truth], [pred], 2, ks=(1,))["R@1"] == 1.0


def test_ground_truth_as_predictions_gives_one(rng=np.random.default_rng(0)):
    truths, preds = [], []
    for _ in range(5):
        n = int(rng.integers(2, 7))
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.hstack([xy, xy + rng.uniform(5, 30, (n, 2))])
        labels = rng.integers(0, 4, n)
        pairs = np.array([(s, o) for s in range(n) for o in range(n) if s != o])
        keep = pairs[rng.random(len(pairs)) < 0.6]
        trip = np.column_stack([keep, rng.integers(0, 3, len(keep))])
        truths.append(GraphTruth(boxes, labels, trip))
        onehot = np.zeros((len(trip), 3))
        onehot[np.arange(len(trip)), trip[:, 2]] = 1
        preds.append(GraphPrediction(boxes, labels, np.ones(n), trip[:, :2], onehot))
    r = graph_recall(truths, preds, 3, ks=(20, 50, 100))
    for k in (50, 100):
        assert r[f"R@{k}"] == 1.0 and r[f"ngR@{k}"] == 1.0 and r[f"mR@{k}"] == 1.0
