"""Multi-object tracking metrics, as pure functions of per-frame ground truth and tracker output.

* **CLEAR MOT** (Bernardin & Stiefelhagen 2008): MOTA, MOTP, ID switches, FP, FN, fragmentations, mostly
  tracked / lost, with the event rules of motmetrics: a ground-truth object keeps its hypothesis of the last
  frame while their IoU is >= 0.5; the rest are matched by a minimum-cost assignment on 1 - IoU that first
  maximises the number of matches; a match to another hypothesis than the object's last one is a switch.
* **Identity** (Ristani et al. 2016): IDF1, IDP, IDR from the one-to-one assignment of ground-truth to tracker
  ids that maximises the frames they share at IoU >= 0.5.
* **HOTA** (Luiten et al. 2021): HOTA, DetA, AssA, LocA (and DetRe/DetPr/AssRe/AssPr), averaged over the
  localisation thresholds 0.05, 0.10, ..., 0.95, with TrackEval's global alignment score in the matching.

Why written here rather than depended on: motmetrics 1.4 (the maintained CLEAR/IDF1 reference) calls
``np.asfarray``, gone in NumPy 2, and builds a pandas frame per event (seconds per sequence); TrackEval from
PyPI requires ``opencv-python``, whose install would overwrite dcvkit's ``opencv-contrib-python-headless``.
Both are installed in the test environment (motmetrics with a NumPy-2 shim, TrackEval with ``--no-deps``) and
``tests/metrics/test_tracking_metrics.py`` checks these functions against them to 1e-6, on motmetrics' own
MOTChallenge sequences (TUD-Campus, TUD-Stadtmitte) among others.

Input: one :class:`Frame` per frame: ground-truth ids and boxes, tracker ids and boxes (x1, y1, x2, y2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

#: the localisation thresholds HOTA averages over
HOTA_ALPHAS = np.arange(0.05, 0.99, 0.05)
EPS = np.finfo("float").eps


@dataclass
class Frame:
    """One frame's ground truth and tracker output: ids (n,) and boxes (n, 4) x1 y1 x2 y2."""

    gt_ids: np.ndarray
    gt_boxes: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray

    def __post_init__(self) -> None:
        self.gt_ids = np.asarray(self.gt_ids, dtype=np.int64).reshape(-1)
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        self.gt_boxes = np.asarray(self.gt_boxes, dtype=np.float64).reshape(-1, 4)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU of boxes x1 y1 x2 y2 (areas w * h, as motmetrics and TrackEval compute them)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def max_matches_assignment(cost: np.ndarray, valid: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i, j) that maximise the number of valid pairs, then minimise their total cost: invalid pairs
    cost more than every valid one together (motmetrics' rule for its solvers)."""
    if cost.size == 0 or not valid.any():
        return []
    big = float(np.abs(cost[valid]).sum()) + 1.0
    rows, cols = linear_sum_assignment(np.where(valid, cost, big))
    return [(int(i), int(j)) for i, j in zip(rows, cols) if valid[i, j]]


@dataclass
class Clear:
    """CLEAR MOT totals over a sequence (or several: :meth:`__add__`)."""

    num_gt: int = 0
    num_dets: int = 0
    matches: int = 0
    fp: int = 0
    fn: int = 0
    idsw: int = 0
    frag: int = 0
    iou_sum: float = 0.0
    mostly_tracked: int = 0
    partially_tracked: int = 0
    mostly_lost: int = 0
    num_objects: int = 0

    @property
    def mota(self) -> float:
        return 1.0 - (self.fn + self.fp + self.idsw) / self.num_gt if self.num_gt else 0.0

    @property
    def motp(self) -> float:
        """Mean IoU of the matches (higher is better; motmetrics reports 1 - this, a distance)."""
        return self.iou_sum / self.matches if self.matches else 0.0

    def __add__(self, other: "Clear") -> "Clear":
        return Clear(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))


def clear_mot(frames: Sequence[Frame], threshold: float = 0.5) -> Clear:
    """CLEAR MOT of one sequence (see the module docstring for the rules)."""
    out = Clear()
    last: dict[int, int] = {}  # gt id -> hypothesis it was last matched to
    states: dict[int, list[bool]] = {}  # gt id -> tracked? per frame it is present
    for f in frames:
        n, m = len(f.gt_ids), len(f.ids)
        out.num_gt += n
        out.num_dets += m
        iou = box_iou(f.gt_boxes, f.boxes) if n and m else np.zeros((n, m))
        valid = iou >= threshold - 1e-12
        gt_done, hyp_done = np.zeros(n, bool), np.zeros(m, bool)
        pairs: list[tuple[int, int]] = []
        for i, g in enumerate(f.gt_ids.tolist()):  # 1. continue the last frame's correspondences
            if g in last:
                js = np.nonzero(~hyp_done & (f.ids == last[g]))[0]
                if len(js) and valid[i, js[0]]:
                    gt_done[i], hyp_done[js[0]] = True, True
                    pairs.append((i, int(js[0])))
        rest = valid & ~gt_done[:, None] & ~hyp_done[None, :]  # 2. the rest by assignment
        for i, j in max_matches_assignment(1.0 - iou, rest):
            g, h = int(f.gt_ids[i]), int(f.ids[j])
            if g in last and last[g] != h:
                out.idsw += 1
            gt_done[i], hyp_done[j] = True, True
            pairs.append((i, j))
        for i, j in pairs:
            last[int(f.gt_ids[i])] = int(f.ids[j])
            out.iou_sum += float(iou[i, j])
        out.matches += len(pairs)
        out.fn += int((~gt_done).sum())
        out.fp += int((~hyp_done).sum())
        for i, g in enumerate(f.gt_ids.tolist()):
            states.setdefault(g, []).append(bool(gt_done[i]))
    for tracked in states.values():
        t = np.array(tracked)
        out.num_objects += 1
        ratio = t.mean()
        out.mostly_tracked += int(ratio >= 0.8)
        out.mostly_lost += int(ratio < 0.2)
        out.partially_tracked += int(0.2 <= ratio < 0.8)
        if t.any():  # fragmentations: tracked -> missed, between the first and the last tracked frame
            span = t[np.argmax(t): len(t) - np.argmax(t[::-1])]
            out.frag += int((span[:-1] & ~span[1:]).sum())
    return out


@dataclass
class Identity:
    """ID measures: true positive, false positive and false negative detections under the best one-to-one
    assignment of ground-truth to tracker ids."""

    idtp: int = 0
    idfp: int = 0
    idfn: int = 0

    @property
    def idf1(self) -> float:
        d = 2 * self.idtp + self.idfp + self.idfn
        return 2 * self.idtp / d if d else 0.0

    @property
    def idp(self) -> float:
        return self.idtp / (self.idtp + self.idfp) if self.idtp + self.idfp else 0.0

    @property
    def idr(self) -> float:
        return self.idtp / (self.idtp + self.idfn) if self.idtp + self.idfn else 0.0

    def __add__(self, other: "Identity") -> "Identity":
        return Identity(self.idtp + other.idtp, self.idfp + other.idfp, self.idfn + other.idfn)


def _index(frames: Sequence[Frame]) -> tuple[dict[int, int], dict[int, int]]:
    gts = sorted({int(g) for f in frames for g in f.gt_ids})
    hyps = sorted({int(h) for f in frames for h in f.ids})
    return {g: k for k, g in enumerate(gts)}, {h: k for k, h in enumerate(hyps)}


def identity(frames: Sequence[Frame], threshold: float = 0.5) -> Identity:
    """IDF1's counts of one sequence."""
    gi, hi = _index(frames)
    shared = np.zeros((len(gi), len(hi)))
    n_gt = n_hyp = 0
    for f in frames:
        n_gt, n_hyp = n_gt + len(f.gt_ids), n_hyp + len(f.ids)
        if len(f.gt_ids) and len(f.ids):
            rows, cols = np.nonzero(box_iou(f.gt_boxes, f.boxes) >= threshold - 1e-12)
            np.add.at(shared, ([gi[int(g)] for g in f.gt_ids[rows]], [hi[int(h)] for h in f.ids[cols]]), 1)
    idtp = 0
    if shared.size:
        rows, cols = linear_sum_assignment(-shared)
        idtp = int(shared[rows, cols].sum())
    return Identity(idtp, n_hyp - idtp, n_gt - idtp)


@dataclass
class Hota:
    """HOTA's sums per localisation threshold (arrays over :data:`HOTA_ALPHAS`)."""

    tp: np.ndarray = field(default_factory=lambda: np.zeros(len(HOTA_ALPHAS)))
    fn: np.ndarray = field(default_factory=lambda: np.zeros(len(HOTA_ALPHAS)))
    fp: np.ndarray = field(default_factory=lambda: np.zeros(len(HOTA_ALPHAS)))
    ass_a: np.ndarray = field(default_factory=lambda: np.zeros(len(HOTA_ALPHAS)))  # sums, / tp when read
    ass_re: np.ndarray = field(default_factory=lambda: np.zeros(len(HOTA_ALPHAS)))
    ass_pr: np.ndarray = field(default_factory=lambda: np.zeros(len(HOTA_ALPHAS)))
    loc: np.ndarray = field(default_factory=lambda: np.zeros(len(HOTA_ALPHAS)))

    def per_alpha(self) -> dict[str, np.ndarray]:
        """Every HOTA quantity at every threshold (TrackEval's arrays)."""
        tp1 = np.maximum(1, self.tp)
        det_a = self.tp / np.maximum(1, self.tp + self.fn + self.fp)
        ass_a = self.ass_a / tp1
        return {"HOTA": np.sqrt(det_a * ass_a), "DetA": det_a, "AssA": ass_a,
                "DetRe": self.tp / np.maximum(1, self.tp + self.fn),
                "DetPr": self.tp / np.maximum(1, self.tp + self.fp),
                "AssRe": self.ass_re / tp1, "AssPr": self.ass_pr / tp1,
                "LocA": np.maximum(1e-10, self.loc) / np.maximum(1e-10, self.tp)}

    def summary(self) -> dict[str, float]:
        """Each quantity averaged over the thresholds (what HOTA means), plus HOTA and LocA at 0 (alpha 0.05)."""
        arrays = self.per_alpha()
        out = {k: float(v.mean()) for k, v in arrays.items()}
        out.update({"HOTA(0)": float(arrays["HOTA"][0]), "LocA(0)": float(arrays["LocA"][0])})
        return out

    def __add__(self, other: "Hota") -> "Hota":
        """Sequences combined as TrackEval combines them: detection counts summed, association and
        localisation weighted by each sequence's true positives."""
        return Hota(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))


def hota(frames: Sequence[Frame]) -> Hota:
    """HOTA's sums for one sequence (TrackEval's algorithm; see the module docstring)."""
    gi, hi = _index(frames)
    out = Hota()
    potential = np.zeros((len(gi), len(hi)))
    gt_count, hyp_count = np.zeros((len(gi), 1)), np.zeros((1, len(hi)))
    sims = []
    for f in frames:
        g = np.array([gi[int(x)] for x in f.gt_ids], dtype=np.int64)
        h = np.array([hi[int(x)] for x in f.ids], dtype=np.int64)
        sim = box_iou(f.gt_boxes, f.boxes) if len(g) and len(h) else np.zeros((len(g), len(h)))
        sims.append((g, h, sim))
        denom = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim
        sim_iou = np.zeros_like(sim)
        mask = denom > 0 + EPS
        sim_iou[mask] = sim[mask] / denom[mask]
        potential[g[:, None], h[None, :]] += sim_iou
        gt_count[g] += 1
        hyp_count[0, h] += 1
    alignment = potential / np.maximum(EPS, gt_count + hyp_count - potential)
    matches = np.zeros((len(HOTA_ALPHAS), len(gi), len(hi)))
    for g, h, sim in sims:
        if len(g) == 0 or len(h) == 0:
            out.fp += len(h)
            out.fn += len(g)
            continue
        rows, cols = linear_sum_assignment(-(alignment[g[:, None], h[None, :]] * sim))
        for a, alpha in enumerate(HOTA_ALPHAS):
            ok = sim[rows, cols] >= alpha - EPS
            r, c = rows[ok], cols[ok]
            out.tp[a] += len(r)
            out.fn[a] += len(g) - len(r)
            out.fp[a] += len(h) - len(r)
            if len(r):
                out.loc[a] += sim[r, c].sum()
                matches[a, g[r], h[c]] += 1
    for a in range(len(HOTA_ALPHAS)):
        mc = matches[a]
        out.ass_a[a] = np.sum(mc * (mc / np.maximum(1, gt_count + hyp_count - mc)))
        out.ass_re[a] = np.sum(mc * (mc / np.maximum(1, gt_count)))
        out.ass_pr[a] = np.sum(mc * (mc / np.maximum(1, hyp_count)))
    return out


def track_metrics(sequences: Sequence[Sequence[Frame]]) -> dict[str, float]:
    """Every metric over one or more sequences (CLEAR and Identity summed; HOTA combined as TrackEval does)."""
    clear, ident, h = Clear(), Identity(), None
    for frames in sequences:
        clear = clear + clear_mot(frames)
        ident = ident + identity(frames)
        one = hota(frames)
        h = one if h is None else h + one
    hs = (h or Hota()).summary()
    return {"MOTA": clear.mota, "MOTP": clear.motp, "IDF1": ident.idf1, "IDP": ident.idp, "IDR": ident.idr,
            "HOTA": hs["HOTA"], "DetA": hs["DetA"], "AssA": hs["AssA"], "LocA": hs["LocA"], "IDSW": clear.idsw,
            "FP": clear.fp, "FN": clear.fn, "Frag": clear.frag, "MT": clear.mostly_tracked,
            "ML": clear.mostly_lost, "GT": clear.num_gt, "objects": clear.num_objects}


__all__ = ["Frame", "box_iou", "max_matches_assignment", "Clear", "clear_mot", "Identity", "identity", "Hota",
           "hota", "track_metrics", "HOTA_ALPHAS"]
