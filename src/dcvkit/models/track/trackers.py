"""Trackers by detection: each frame's detections (boxes, scores, labels, optionally appearance embeddings)
in, the frame's tracks (persistent ids) out.

* ``iou`` (Bochinski et al. 2017): greedy association of confident detections to the last box of each track
  by IoU; a track unmatched for one frame ends. The baseline.
* ``sort`` (Bewley et al. 2016): a constant-velocity Kalman filter per track (:mod:`.kalman`) and a minimum
  cost assignment (``scipy.optimize.linear_sum_assignment``) on 1 - IoU with the predicted boxes; a track
  survives ``max_age`` frames unmatched and is shown once it has ``min_hits`` matches.
* ``bytetrack`` (Zhang et al. 2022): SORT's filter, lost tracks kept for ``buffer`` frames, and a second
  association that matches the tracks left over to the low-score detections (occluded objects score low).
* ``appearance`` (DeepSORT-like, Wojke et al. 2017, with ByteTrack's second pass): the first association on
  the cosine distance between a track's (exponentially averaged) embedding and a detection's, gated by the
  Kalman filter's Mahalanobis distance, then IoU for what is left: an object hidden for a while is
  recognised when it reappears, and two objects crossing are told apart by how they look.

A tracker is a stream: ``update`` once per frame, in order; ids are never reused by one tracker (``reset``
forgets the tracks but not the id counter), so calls on a stream give stable, unique ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.optimize import linear_sum_assignment

from dcvkit.choices import TRACKERS as TRACKER_NAMES
from dcvkit.metrics.tracking import box_iou
from dcvkit.models.track.kalman import CHI2_95, KalmanBoxFilter, xyah_to_xyxy


@dataclass
class Tracks:
    """One frame's tracks: ids (n,), boxes (n, 4) x1 y1 x2 y2, scores (n,), labels (n,)."""

    ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def empty() -> "Tracks":
        return Tracks(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))


def assign(cost: np.ndarray, max_cost: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Minimum-cost pairs with cost <= ``max_cost`` (SciPy's Hungarian solver; pairs above the limit are
    never taken): (pairs, unmatched rows, unmatched columns)."""
    n, m = cost.shape
    if n == 0 or m == 0:
        return [], list(range(n)), list(range(m))
    big = max_cost + 1e5
    rows, cols = linear_sum_assignment(np.where(cost <= max_cost, cost, big))
    pairs = [(int(i), int(j)) for i, j in zip(rows, cols) if cost[i, j] <= max_cost]
    used_r, used_c = {i for i, _ in pairs}, {j for _, j in pairs}
    return pairs, [i for i in range(n) if i not in used_r], [j for j in range(m) if j not in used_c]


def covered(boxes: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """(n,) the largest share of each box that another box (of those marked ``among``) covers."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(b) < 2:
        return np.zeros(len(b))
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    np.fill_diagonal(inter, 0)
    if among is not None:
        inter[:, ~np.asarray(among, bool)] = 0
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-12)
    return inter.max(1) / area


def confident(boxes, scores, labels, thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detections scoring at least ``thresh`` (boxes (n, 4) float, scores float, labels int)."""
    keep = np.asarray(scores, float) >= thresh
    return (np.asarray(boxes, float).reshape(-1, 4)[keep], np.asarray(scores, float)[keep],
            np.asarray(labels, np.int64)[keep])


class Tracker:
    """What every tracker shares: the id counter, the track table and the output."""

    name: ClassVar[str] = "tracker"
    needs_embeddings: ClassVar[bool] = False

    def __init__(self) -> None:
        self._next_id = 1
        self.frame = 0
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new stream); ids keep counting, so they never repeat."""
        self.frame = 0

    def _new_ids(self, n: int) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        return ids

    @classmethod
    def from_options(cls, track_thresh: float, low_thresh: float, buffer: int) -> "Tracker":
        """The tracker for ``dcv track``'s options: detections at least ``track_thresh`` are the confident
        ones (the only ones, for trackers without a low-score pass); ``low_thresh``, ``buffer``: the
        low-score pass's floor and the frames a lost track is kept, where the tracker has them."""
        return cls(det_thresh=track_thresh)  # type: ignore[call-arg]

    def update(self, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
               embeddings: np.ndarray | None = None) -> Tracks:
        raise NotImplementedError


class IoUTracker(Tracker):
    """Greedy IoU association (see the module docstring)."""

    name = "iou"

    def __init__(self, det_thresh: float = 0.5, iou_thresh: float = 0.3):
        self.det_thresh, self.iou_thresh = det_thresh, iou_thresh
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.ids, self.boxes = np.zeros(0, np.int64), np.zeros((0, 4))

    def update(self, boxes, scores, labels, embeddings=None) -> Tracks:
        self.frame += 1
        boxes, scores, labels = confident(boxes, scores, labels, self.det_thresh)
        iou = box_iou(self.boxes, boxes) if len(self.boxes) and len(boxes) else np.zeros((len(self.boxes), len(boxes)))
        ids = np.zeros(len(boxes), np.int64)
        free_t, free_d = np.ones(len(self.boxes), bool), np.ones(len(boxes), bool)
        for flat in np.argsort(-iou, axis=None):  # best overlaps first
            t, d = np.unravel_index(flat, iou.shape)
            if iou[t, d] < self.iou_thresh:
                break
            if free_t[t] and free_d[d]:
                ids[d], free_t[t], free_d[d] = self.ids[t], False, False
        ids[free_d] = self._new_ids(int(free_d.sum()))
        self.ids, self.boxes = ids, boxes
        return Tracks(ids.copy(), boxes.copy(), scores, labels.astype(np.int64))


class _KalmanTracker(Tracker):
    """The track table of the Kalman trackers: filter state, ids, labels, scores, hits, frames unmatched,
    whether confirmed, and (appearance) a running embedding."""

    def __init__(self, kalman: KalmanBoxFilter | None = None):
        self.kf = kalman or KalmanBoxFilter()
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.mean, self.cov = np.zeros((0, 8)), np.zeros((0, 8, 8))
        self.ids = np.zeros(0, np.int64)
        self.labels, self.scores = np.zeros(0, np.int64), np.zeros(0)
        self.hits, self.missed = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self.confirmed = np.zeros(0, bool)
        self.emb: np.ndarray | None = None

    def _predict(self) -> None:
        self.mean, self.cov = self.kf.predict(self.mean, self.cov)
        self.missed += 1

    def predicted_boxes(self) -> np.ndarray:
        return xyah_to_xyxy(self.mean[:, :4]) if len(self.mean) else np.zeros((0, 4))

    def _update_tracks(self, rows: list[int], boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                       embeddings: np.ndarray | None, cols: list[int], alpha: float = 0.9,
                       clean: np.ndarray | None = None) -> None:
        """Correct the matched tracks (``rows``) with their detections (``cols``); a track's look follows its
        detections' (exponential average) except where ``clean`` is False (a partly hidden detection shows
        some of whatever hides it)."""
        if not rows:
            return
        r = np.array(rows)
        c = np.array(cols)
        m, p = self.kf.update(self.mean[r], self.cov[r], boxes[c])
        self.mean[r], self.cov[r] = m, p
        self.scores[r], self.labels[r] = scores[c], labels[c]
        self.hits[r] += 1
        self.missed[r] = 0
        if embeddings is not None and self.emb is not None:
            if clean is not None:
                r, c = r[clean[c]], c[clean[c]]
            e = alpha * self.emb[r] + (1 - alpha) * embeddings[c]
            self.emb[r] = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    def _add_tracks(self, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                    embeddings: np.ndarray | None, confirmed: bool) -> None:
        if len(boxes) == 0:
            return
        mean, cov = self.kf.initiate(boxes)
        self.mean, self.cov = np.concatenate([self.mean, mean]), np.concatenate([self.cov, cov])
        self.ids = np.concatenate([self.ids, self._new_ids(len(boxes))])
        self.labels = np.concatenate([self.labels, labels.astype(np.int64)])
        self.scores = np.concatenate([self.scores, scores])
        self.hits = np.concatenate([self.hits, np.ones(len(boxes), np.int64)])
        self.missed = np.concatenate([self.missed, np.zeros(len(boxes), np.int64)])
        self.confirmed = np.concatenate([self.confirmed, np.full(len(boxes), confirmed)])
        if embeddings is not None:
            self.emb = embeddings.copy() if self.emb is None or len(self.emb) == 0 else \
                np.concatenate([self.emb, embeddings])

    def _drop(self, keep: np.ndarray) -> None:
        for name in ("mean", "cov", "ids", "labels", "scores", "hits", "missed", "confirmed"):
            setattr(self, name, getattr(self, name)[keep])
        if self.emb is not None:
            self.emb = self.emb[keep]

    def _output(self) -> Tracks:
        show = (self.missed == 0) & self.confirmed
        return Tracks(self.ids[show].copy(), self.predicted_boxes()[show], self.scores[show].copy(),
                      self.labels[show].copy())


class SORT(_KalmanTracker):
    """Kalman filter + Hungarian assignment on IoU (see the module docstring)."""

    name = "sort"

    def __init__(self, det_thresh: float = 0.5, iou_thresh: float = 0.3, max_age: int = 1, min_hits: int = 3):
        self.det_thresh, self.iou_thresh, self.max_age, self.min_hits = det_thresh, iou_thresh, max_age, min_hits
        super().__init__()

    def update(self, boxes, scores, labels, embeddings=None) -> Tracks:
        self.frame += 1
        boxes, scores, labels = confident(boxes, scores, labels, self.det_thresh)
        self._predict()
        cost = 1 - box_iou(self.predicted_boxes(), boxes)
        pairs, _, new = assign(cost.reshape(len(self.ids), len(boxes)), 1 - self.iou_thresh)
        self._update_tracks([t for t, _ in pairs], boxes, scores, labels, None, [d for _, d in pairs])
        self._drop(self.missed <= self.max_age)
        self._add_tracks(boxes[new], scores[new], labels[new], None, confirmed=False)
        # shown once matched min_hits times (in the first frames, at once: SORT's warm-up rule)
        self.confirmed |= (self.hits >= self.min_hits) | (self.frame <= self.min_hits)
        return self._output()


class ByteTrack(_KalmanTracker):
    """SORT's filter, a buffer of lost tracks, and the second association on low-score detections. A new
    track is tentative (not shown; dropped when it misses a frame) until its ``n_init``-th match."""

    name = "bytetrack"
    N_INIT: ClassVar[int] = 2  # ByteTrack's: confirmed by the second match

    def __init__(self, high_thresh: float = 0.5, low_thresh: float = 0.1, new_track_thresh: float = 0.6,
                 match_iou: float = 0.2, low_match_iou: float = 0.5, buffer: int = 30, occluded: float = 0.3,
                 n_init: int | None = None):
        self.high, self.low, self.new_thresh, self.occluded = high_thresh, low_thresh, new_track_thresh, occluded
        self.n_init = self.N_INIT if n_init is None else n_init
        self.match_iou, self.low_match_iou, self.buffer = match_iou, low_match_iou, buffer
        super().__init__()

    @classmethod
    def from_options(cls, track_thresh: float, low_thresh: float, buffer: int) -> "Tracker":
        """New tracks start from detections 0.1 above the confident ones' threshold (ByteTrack's 0.6 vs 0.5)."""
        return cls(high_thresh=track_thresh, low_thresh=low_thresh, new_track_thresh=min(1.0, track_thresh + 0.1),
                   buffer=buffer)

    def _first_cost(self, boxes: np.ndarray, embeddings: np.ndarray | None) -> tuple[np.ndarray, float]:
        """The first association's cost of every track against the confident detections, and its limit."""
        return 1 - box_iou(self.predicted_boxes(), boxes).reshape(len(self.ids), len(boxes)), 1 - self.match_iou

    def update(self, boxes, scores, labels, embeddings=None) -> Tracks:
        self.frame += 1
        boxes, scores, labels = np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float), np.asarray(labels)
        emb = None if embeddings is None else np.asarray(embeddings, float)
        high, low = scores >= self.high, (scores >= self.low) & (scores < self.high)
        clean = covered(boxes, scores >= self.low) < self.occluded if emb is not None else None
        hb, hs, hl = boxes[high], scores[high], labels[high]
        he = emb[high] if emb is not None else None
        self._predict()
        # 1. every track (confirmed, lost, new) against the confident detections
        cost, limit = self._first_cost(hb, he)
        pairs, left_t, left_d = assign(cost, limit)
        self._update_tracks([t for t, _ in pairs], hb, hs, hl, he, [d for _, d in pairs],
                            clean=clean[high] if clean is not None else None)
        # 2. the tracks seen last frame and still unmatched against the low-score detections, by IoU
        recent = [t for t in left_t if self.missed[t] == 1 and self.confirmed[t]]
        lb, ls, ll = boxes[low], scores[low], labels[low]
        le = emb[low] if emb is not None else None
        if recent and len(lb):
            cost2 = 1 - box_iou(self.predicted_boxes()[recent], lb)
            pairs2, _, _ = assign(cost2, 1 - self.low_match_iou)
            self._update_tracks([recent[t] for t, _ in pairs2], lb, ls, ll, le, [d for _, d in pairs2],
                                clean=clean[low] if clean is not None else None)
        # tentative tracks not matched now are dropped; lost confirmed tracks live `buffer` frames
        keep = (self.missed == 0) | (self.confirmed & (self.missed <= self.buffer))
        self._drop(keep)
        self.confirmed |= self.hits >= self.n_init  # a new track is shown from its n_init-th match on
        fresh = [d for d in left_d if hs[d] >= self.new_thresh]
        self._add_tracks(hb[fresh], hs[fresh], hl[fresh], he[fresh] if he is not None else None,
                         confirmed=self.frame == 1)
        return self._output()


class AppearanceTracker(ByteTrack):
    """ByteTrack whose first association looks: cosine distance of embeddings, gated by the Kalman filter's
    Mahalanobis distance (chi-square 95%, 4 degrees of freedom) and by ``max_cosine``; IoU decides where
    appearance does not (a detection that no track resembles, a track without a match)."""

    name = "appearance"
    needs_embeddings = True
    # DeepSORT's n_init: a partial view of a hidden object that no track resembles yet starts a tentative track,
    # which the lost track, recognised a frame later, replaces before it is ever shown
    N_INIT = 3

    def __init__(self, max_cosine: float = 0.25, **kwargs):
        self.max_cosine = max_cosine
        super().__init__(**kwargs)

    def _first_cost(self, boxes: np.ndarray, embeddings: np.ndarray | None) -> tuple[np.ndarray, float]:
        iou_cost, iou_limit = super()._first_cost(boxes, embeddings)
        if embeddings is None or self.emb is None or len(self.ids) == 0 or len(boxes) == 0:
            return iou_cost, iou_limit
        cosine = 1 - self.emb @ embeddings.T
        gate = self.kf.mahalanobis(self.mean, self.cov, boxes) > CHI2_95[4]
        appearance = np.where(gate | (cosine > self.max_cosine), np.inf, cosine)
        # a pair either looks alike (cost = its cosine distance, below max_cosine) or overlaps (cost = 1 + IoU
        # distance: taken only where no look-alike pair competes for the same track or detection)
        cost = np.where(np.isfinite(appearance), appearance, np.where(iou_cost <= iou_limit, 1 + iou_cost, np.inf))
        return np.where(np.isfinite(cost), cost, 1e6), 1 + iou_limit


TRACKERS: dict[str, type[Tracker]] = {t.name: t for t in (IoUTracker, SORT, ByteTrack, AppearanceTracker)}
assert tuple(TRACKERS) == TRACKER_NAMES, "dcvkit.choices.TRACKERS names the trackers the CLI offers"


def create_tracker(name: str, **kwargs) -> Tracker:
    """A tracker by name (``iou``, ``sort``, ``bytetrack``, ``appearance``)."""
    from dcvkit.errors import ConfigError

    if name not in TRACKERS:
        raise ConfigError(f"unknown tracker '{name}'; choose one of {', '.join(TRACKERS)}")
    return TRACKERS[name](**kwargs)


__all__ = ["Tracks", "Tracker", "IoUTracker", "SORT", "ByteTrack", "AppearanceTracker", "TRACKERS",
           "create_tracker", "assign"]
