"""The trackers' parts with hand-computed values: the Kalman filter, the assignment; and the trackers' contracts
(stable, never-reused ids; ByteTrack's second pass; the appearance gate)."""

from __future__ import annotations

import numpy as np
import pytest

from dcvkit.metrics.tracking import Frame, track_metrics
from dcvkit.models.track import SORT, TRACKERS, AppearanceTracker, ByteTrack, IoUTracker, KalmanBoxFilter, assign
from dcvkit.models.track.kalman import xyah_to_xyxy, xyxy_to_xyah


def test_box_conversions_round_trip():
    b = np.array([[0.0, 0.0, 20.0, 40.0], [5.0, 7.0, 9.0, 8.0]])
    np.testing.assert_allclose(xyxy_to_xyah(b)[0], [10, 20, 0.5, 40])
    np.testing.assert_allclose(xyah_to_xyxy(xyxy_to_xyah(b)), b)


def test_kalman_predict_and_update_by_hand():
    """Box [0, 0, 20, 40]: cx 10, cy 20, a 0.5, h 40. Initial std: 2 h / 20 = 4 px for cx, 10 h / 160 = 2.5 px
    per frame for its velocity. Predict (velocity 0): cx stays 10; var(cx) = 16 + 6.25 + (h / 20)^2 = 26.25,
    cov(cx, vx) = 6.25, var(vx) = 6.25 + (h / 160)^2 = 6.3125. Update with cx = 12 (R = (h / 20)^2 = 4):
    S = 30.25, cx = 10 + 2 * 26.25 / 30.25, vx = 2 * 6.25 / 30.25, var(cx) = 26.25 * 4 / 30.25."""
    kf = KalmanBoxFilter()
    mean, cov = kf.initiate(np.array([[0.0, 0.0, 20.0, 40.0]]))
    np.testing.assert_allclose(mean[0], [10, 20, 0.5, 40, 0, 0, 0, 0])
    np.testing.assert_allclose(np.diag(cov[0])[[0, 1, 3, 4, 5, 7]], [16, 16, 16, 6.25, 6.25, 6.25])
    mean, cov = kf.predict(mean, cov)
    np.testing.assert_allclose(mean[0], [10, 20, 0.5, 40, 0, 0, 0, 0])
    assert cov[0, 0, 0] == pytest.approx(26.25)
    assert cov[0, 0, 4] == pytest.approx(6.25) and cov[0, 4, 4] == pytest.approx(6.3125)
    mean, cov = kf.update(mean, cov, np.array([[2.0, 0.0, 22.0, 40.0]]))
    assert mean[0, 0] == pytest.approx(10 + 2 * 26.25 / 30.25)
    assert mean[0, 4] == pytest.approx(2 * 6.25 / 30.25)
    np.testing.assert_allclose(mean[0, [1, 2, 3, 5, 6, 7]], [20, 0.5, 40, 0, 0, 0], atol=1e-12)
    assert cov[0, 0, 0] == pytest.approx(26.25 * 4 / 30.25)


def test_kalman_follows_a_constant_velocity():
    kf = KalmanBoxFilter()
    box = np.array([[0.0, 0.0, 20.0, 40.0]])
    mean, cov = kf.initiate(box)
    for t in range(1, 30):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, box + [3 * t, 0, 3 * t, 0])
    assert mean[0, 4] == pytest.approx(3.0, abs=0.05)  # learned 3 px per frame
    mean, _ = kf.predict(mean, cov)
    assert mean[0, 0] == pytest.approx(10 + 3 * 30, abs=0.2)


def test_kalman_is_batched_row_by_row():
    kf = KalmanBoxFilter()
    boxes = np.array([[0.0, 0.0, 20.0, 40.0], [50.0, 10.0, 60.0, 30.0]])
    m2, c2 = kf.predict(*kf.initiate(boxes))
    m2, c2 = kf.update(m2, c2, boxes + 2)
    for i in range(2):
        m1, c1 = kf.predict(*kf.initiate(boxes[i:i + 1]))
        m1, c1 = kf.update(m1, c1, boxes[i:i + 1] + 2)
        np.testing.assert_allclose(m2[i], m1[0])
        np.testing.assert_allclose(c2[i], c1[0])


def test_mahalanobis_distance_by_hand():
    kf = KalmanBoxFilter()
    mean, cov = kf.initiate(np.array([[0.0, 0.0, 20.0, 40.0]]))
    # projected cx variance: 16 + R 4 = 20; a box 4 px right differs in cx only: d^2 = 16 / 20
    d = kf.mahalanobis(mean, cov, np.array([[4.0, 0.0, 24.0, 40.0]]))
    assert d[0, 0] == pytest.approx(16 / 20)


def test_assignment_on_a_small_cost_matrix():
    # the optimum (0,0) + (1,1) = 0.4 beats (0,2) + (1,0) = 0.7; column 2 is left over
    pairs, rows, cols = assign(np.array([[0.1, 0.9, 0.5], [0.2, 0.3, 0.95]]), max_cost=0.8)
    assert sorted(pairs) == [(0, 0), (1, 1)] and rows == [] and cols == [2]
    # greedy would take (0, 0) = 0.1 and leave row 1 with 0.9 > limit; the Hungarian solver matches both
    pairs, rows, cols = assign(np.array([[0.1, 0.2], [0.15, 0.9]]), max_cost=0.5)
    assert sorted(pairs) == [(0, 1), (1, 0)] and rows == cols == []
    # a pair above the limit is never taken
    assert assign(np.array([[0.9]]), max_cost=0.5) == ([], [0], [0])
    assert assign(np.zeros((0, 3)), max_cost=0.5) == ([], [], [0, 1, 2])


def walk(n: int, frames: int, seed: int = 0):
    """Objects 60 px apart moving slowly on straight lines (they never meet): per frame (ids, boxes)."""
    rng = np.random.default_rng(seed)
    start = np.stack([np.arange(n) * 60.0, rng.uniform(0, 100, n)], 1)
    vel = rng.uniform(-0.5, 0.5, (n, 2))
    return [(np.arange(1, n + 1), np.concatenate([start + t * vel, start + t * vel + 30], 1)) for t in range(frames)]


@pytest.mark.parametrize("name", sorted(TRACKERS))
def test_perfect_detections_give_perfect_scores(name):
    tracker = TRACKERS[name]()
    frames = []
    rng = np.random.default_rng(0)
    for ids, boxes in walk(5, 30):
        emb = rng.normal(size=(5, 8)) * 0.01 + np.eye(5, 8)  # five distinct looks
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        t = tracker.update(boxes, np.full(5, 0.9), np.zeros(5, int), emb)
        frames.append(Frame(ids, boxes, t.ids, t.boxes))
    m = track_metrics([frames])
    assert m["MOTA"] == pytest.approx(1) and m["IDF1"] == pytest.approx(1) and m["HOTA"] == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize("name", sorted(TRACKERS))
def test_ids_are_unique_stable_and_never_reused(name):
    tracker = TRACKERS[name]()
    seen: dict[int, int] = {}
    for ids, boxes in walk(4, 10):
        t = tracker.update(boxes, np.full(4, 0.9), np.zeros(4, int), np.eye(4, 6))
        assert len(set(t.ids.tolist())) == len(t.ids)  # never two tracks with one id in a frame
        for i, b in zip(t.ids.tolist(), t.boxes):
            obj = int(np.argmin(np.abs(boxes - b).sum(1)))
            assert seen.setdefault(i, obj) == obj  # an id follows one object
    first = set(seen)
    tracker.reset()  # a new stream: tracks forgotten, ids keep counting
    t = tracker.update(walk(4, 1)[0][1], np.full(4, 0.9), np.zeros(4, int), np.eye(4, 6))
    assert len(t) == 4 and not first & set(t.ids.tolist())


def test_iou_tracker_is_greedy_on_overlap():
    t = IoUTracker()
    a = t.update(np.array([[0, 0, 10, 10], [20, 0, 30, 10]]), np.array([0.9, 0.9]), np.zeros(2, int))
    b = t.update(np.array([[21, 0, 31, 10], [1, 0, 11, 10]]), np.array([0.9, 0.9]), np.zeros(2, int))
    assert b.ids.tolist() == [a.ids[1], a.ids[0]]
    c = t.update(np.array([[100, 100, 110, 110]]), np.array([0.9]), np.zeros(1, int))  # no overlap: a new track
    assert c.ids[0] not in a.ids


def test_bytetrack_rescues_a_low_score_detection_that_sort_drops():
    box = np.array([[10.0, 10.0, 40.0, 40.0]])
    scores = [0.9] * 5 + [0.3] * 3 + [0.9] * 3  # partly hidden for three frames: the detector is unsure
    out = {}
    for tracker in (SORT(), ByteTrack()):
        ids = []
        for t, s in enumerate(scores):
            r = tracker.update(box + t, np.array([s]), np.zeros(1, int))
            ids.append(int(r.ids[0]) if len(r) else None)
        out[tracker.name] = ids
    assert out["bytetrack"] == [out["bytetrack"][0]] * len(scores)  # one id, every frame
    assert out["sort"][5:8] == [None] * 3 and out["sort"][-1] != out["sort"][0]  # lost, then a new id


def test_appearance_tracker_finds_a_hidden_object_by_its_look():
    """Two overlapping objects (16 px apart, IoU 0.30) are hidden for 5 frames and come back with their places
    swapped: IoU says the object at the left is the one that was at the left (ByteTrack follows it); their
    looks say which is which, and both are within the Kalman gate of either track."""
    left, right = np.array([10.0, 10.0, 40.0, 40.0]), np.array([26.0, 10.0, 56.0, 40.0])
    looks = np.eye(2, 4)
    got = {}
    for tracker in (ByteTrack(), AppearanceTracker()):
        for _ in range(4):
            r = tracker.update(np.stack([left, right]), np.array([0.9, 0.9]), np.zeros(2, int), looks)
        id_a, id_b = r.ids.tolist()  # a looks like [1, 0, 0, 0], b like [0, 1, 0, 0]
        for _ in range(5):
            tracker.update(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), np.zeros((0, 4)))
        r = tracker.update(np.stack([left, right]), np.array([0.9, 0.9]), np.zeros(2, int), looks[::-1])
        at_left = int(r.ids[np.argmin(r.boxes[:, 0])])
        got[tracker.name] = at_left, id_a, id_b
    assert got["bytetrack"][0] == got["bytetrack"][1]  # by position: the left one is still a
    assert got["appearance"][0] == got["appearance"][2]  # by look: the left one is b
