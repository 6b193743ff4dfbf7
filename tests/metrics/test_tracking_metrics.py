"""Tracking metrics: hand-computed cases, and equality with the reference evaluators (motmetrics for CLEAR MOT
and IDF1, TrackEval for HOTA) on the MOTChallenge sequences motmetrics ships and on random sequences."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dcvkit.data.mot import read_mot_txt
from dcvkit.metrics.tracking import HOTA_ALPHAS, Frame, box_iou, clear_mot, hota, identity, track_metrics
from conftest import missing


def frames_from_files(gt_path: Path, res_path: Path) -> list[Frame]:
    gt, res = read_mot_txt(gt_path), read_mot_txt(res_path)
    out = []
    for k in range(1, max([*gt, *res]) + 1):
        g, r = gt.get(k), res.get(k)
        out.append(Frame(g.ids if g else [], g.boxes if g else np.zeros((0, 4)),
                         r.ids if r else [], r.boxes if r else np.zeros((0, 4))))
    return out


def walk(n_objects: int, frames: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ground truth of objects moving on straight lines: per frame (ids, boxes)."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 200, (n_objects, 2))
    vel = rng.uniform(-3, 3, (n_objects, 2))
    size = rng.uniform(20, 40, (n_objects, 2))
    out = []
    for t in range(frames):
        xy = start + t * vel
        out.append((np.arange(1, n_objects + 1), np.concatenate([xy, xy + size], 1)))
    return out


# --- hand-computed ---------------------------------------------------------------------------------------


def test_a_perfect_tracker_scores_one_everywhere():
    frames = [Frame(ids, boxes, ids + 100, boxes) for ids, boxes in walk(4, 20, 0)]
    m = track_metrics([frames])
    for k in ("MOTA", "MOTP", "IDF1", "IDP", "IDR", "HOTA", "DetA", "AssA", "LocA"):
        assert m[k] == pytest.approx(1.0, abs=1e-12), k
    assert (m["IDSW"], m["FP"], m["FN"], m["Frag"]) == (0, 0, 0, 0)
    assert m["MT"] == 4 and m["ML"] == 0


def test_swapping_two_ids_from_one_frame_on_is_exactly_two_switches():
    gt = walk(2, 10, 1)  # two objects far enough apart that every box matches only its own
    frames = []
    for t, (ids, boxes) in enumerate(gt):
        hyp = np.array([7, 9]) if t < 5 else np.array([9, 7])  # from frame 6 on, the ids are swapped
        frames.append(Frame(ids, boxes, hyp, boxes))
    assert box_iou(gt[5][1][:1], gt[5][1][1:])[0, 0] < 0.5
    c = clear_mot(frames)
    assert c.idsw == 2  # one per ground-truth object
    assert (c.fp, c.fn, c.frag) == (0, 0, 0)
    assert c.mota == pytest.approx(1 - 2 / 20)
    ident = identity(frames)
    assert ident.idtp == 10 and ident.idf1 == pytest.approx(0.5)  # each gt id keeps one tracker id for 5 of 10


def test_hota_of_a_three_frame_case_computed_on_paper():
    """One object over three frames, gt box [0, 0, 10, 10]. The tracker: id A in frames 1 and 2 (frame 2's box
    [0, 0, 10, 6.2], IoU 0.62), id B in frame 3 (exact).

    Thresholds alpha <= 0.60 (12 of the 19): all three frames match. DetA = 3 / 3 = 1. Associations: A matched
    twice, gt present 3 times, A present twice: A(A) = 2 / (3 + 2 - 2) = 2/3; A(B) = 1 / (3 + 1 - 1) = 1/3;
    AssA = (2 * 2/3 + 1 * 1/3) / 3 = 5/9. LocA = (1 + 0.62 + 1) / 3.
    Thresholds alpha >= 0.65 (7): frame 2 is a FN and a FP. DetA = 2 / (2 + 1 + 1) = 1/2. A(A) = 1 / (3 + 2 - 1)
    = 1/4, A(B) = 1/3; AssA = (1/4 + 1/3) / 2 = 7/24. LocA = 1.
    HOTA = (12 sqrt(5/9) + 7 sqrt(1/2 * 7/24)) / 19."""
    g = [0.0, 0.0, 10.0, 10.0]
    frames = [Frame([1], [g], [1], [g]), Frame([1], [g], [1], [[0, 0, 10, 6.2]]), Frame([1], [g], [2], [g])]
    assert box_iou([g], [[0, 0, 10, 6.2]])[0, 0] == pytest.approx(0.62)
    low = HOTA_ALPHAS <= 0.6 + 1e-9
    assert low.sum() == 12 and (~low).sum() == 7
    s = hota(frames).summary()
    assert s["DetA"] == pytest.approx((12 * 1 + 7 * 0.5) / 19, abs=1e-12)
    assert s["AssA"] == pytest.approx((12 * 5 / 9 + 7 * 7 / 24) / 19, abs=1e-12)
    assert s["LocA"] == pytest.approx((12 * (2.62 / 3) + 7 * 1) / 19, abs=1e-12)
    assert s["HOTA"] == pytest.approx((12 * np.sqrt(5 / 9) + 7 * np.sqrt(0.5 * 7 / 24)) / 19, abs=1e-12)


def test_misses_and_false_positives_counted_by_hand():
    g = [[0, 0, 10, 10], [50, 50, 60, 60]]
    frames = [Frame([1, 2], g, [5], [g[0]]),  # object 2 missed
              Frame([1, 2], g, [5, 6, 8], [g[0], g[1], [100, 100, 110, 110]]),  # one FP far away
              Frame([1, 2], g, [6], [g[1]])]  # object 1 missed: a fragmentation of neither (its track ended)
    c = clear_mot(frames)
    assert (c.fn, c.fp, c.idsw, c.matches) == (2, 1, 0, 4)
    assert c.mota == pytest.approx(1 - 3 / 6)


# --- the reference evaluators ----------------------------------------------------------------------------


def _motmetrics():
    if importlib.util.find_spec("motmetrics") is None:
        missing("motmetrics is not installed (it is in the dev extras: make setup)")
    if not hasattr(np, "asfarray"):  # motmetrics 1.4 calls np.asfarray, removed in NumPy 2: the shim it needs
        np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)  # type: ignore[attr-defined]
    import motmetrics

    return motmetrics


def _trackeval():
    if importlib.util.find_spec("trackeval") is None:
        missing("trackeval is not installed (make setup installs it with --no-deps)")
    import trackeval

    return trackeval


def motmetrics_values(frames: list[Frame]) -> dict[str, float]:
    mm = _motmetrics()
    acc = mm.MOTAccumulator(auto_id=True)
    for f in frames:
        wh = lambda b: np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1)  # noqa: E731
        acc.update(f.gt_ids, f.ids, mm.distances.iou_matrix(wh(f.gt_boxes), wh(f.boxes), max_iou=0.5))
    names = ["mota", "motp", "idf1", "idp", "idr", "num_switches", "num_false_positives", "num_misses",
             "num_fragmentations", "mostly_tracked", "mostly_lost", "num_unique_objects"]
    row = mm.metrics.create().compute(acc, metrics=names, name="seq")
    return {k: float(row[k].iloc[0]) for k in names}


def trackeval_values(frames: list[Frame]) -> dict[str, float]:
    te = _trackeval()
    gi = {g: k for k, g in enumerate(sorted({int(x) for f in frames for x in f.gt_ids}))}
    hi = {h: k for k, h in enumerate(sorted({int(x) for f in frames for x in f.ids}))}
    data = {"num_timesteps": len(frames), "num_gt_ids": len(gi), "num_tracker_ids": len(hi),
            "num_gt_dets": sum(len(f.gt_ids) for f in frames), "num_tracker_dets": sum(len(f.ids) for f in frames),
            "gt_ids": [np.array([gi[int(x)] for x in f.gt_ids], int) for f in frames],
            "tracker_ids": [np.array([hi[int(x)] for x in f.ids], int) for f in frames],
            "similarity_scores": [box_iou(f.gt_boxes, f.boxes) for f in frames]}
    res = te.metrics.HOTA().eval_sequence(data)
    return {k: float(np.mean(res[k])) for k in ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")}


def assert_equal_to_references(frames: list[Frame]) -> dict[str, float]:
    ours = track_metrics([frames])
    mm = motmetrics_values(frames)
    assert ours["MOTA"] == pytest.approx(mm["mota"], abs=1e-6)
    assert 1 - ours["MOTP"] == pytest.approx(mm["motp"], abs=1e-6)  # motmetrics: a distance, 1 - IoU
    for ours_key, mm_key in (("IDF1", "idf1"), ("IDP", "idp"), ("IDR", "idr")):
        assert ours[ours_key] == pytest.approx(mm[mm_key], abs=1e-6), ours_key
    for ours_key, mm_key in (("IDSW", "num_switches"), ("FP", "num_false_positives"), ("FN", "num_misses"),
                             ("Frag", "num_fragmentations"), ("MT", "mostly_tracked"), ("ML", "mostly_lost"),
                             ("objects", "num_unique_objects")):
        assert ours[ours_key] == mm[mm_key], ours_key
    te = trackeval_values(frames)
    h = hota(frames).summary()
    for k, v in te.items():
        assert h[k] == pytest.approx(v, abs=1e-6), k
    return ours


def _tud(name: str) -> list[Frame]:
    mm = _motmetrics()
    root = Path(mm.__file__).parent / "data" / name
    if not (root / "gt.txt").is_file():
        missing(f"motmetrics ships {root}/gt.txt; it is not there")
    return frames_from_files(root / "gt.txt", root / "test.txt")


# The MOTChallenge devkit's published figures for the results motmetrics ships (its README and
# tests/test_metrics.py): IDF1 IDP IDR, GT MT ML, FP FN IDs FM, MOTA MOTP (percent, MOTP as IoU)
PUBLISHED = {
    "TUD-Campus": (55.8, 73.0, 45.1, 8, 1, 1, 13, 150, 7, 7, 52.6, 72.3),
    "TUD-Stadtmitte": (64.5, 82.0, 53.1, 10, 5, 1, 45, 452, 7, 6, 56.4, 65.4),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_tud_sequences_equal_the_references_and_the_published_values(name):
    m = assert_equal_to_references(_tud(name))
    idf1, idp, idr, gt, mt, ml, fp, fn, ids, fm, mota, motp = PUBLISHED[name]
    assert round(100 * m["IDF1"], 1) == idf1 and round(100 * m["IDP"], 1) == idp and round(100 * m["IDR"], 1) == idr
    assert (m["objects"], m["MT"], m["ML"], m["FP"], m["FN"], m["IDSW"], m["Frag"]) == (gt, mt, ml, fp, fn, ids, fm)
    assert round(100 * m["MOTA"], 1) == mota and round(100 * m["MOTP"], 1) == motp


@pytest.mark.parametrize("seed", range(4))
def test_random_trackers_equal_the_references(seed):
    """Noisy boxes, misses, false positives, id switches and crossings: every rule of the evaluators exercised."""
    rng = np.random.default_rng(seed)
    frames = []
    swap = {}
    for ids, boxes in walk(6, 40, seed + 10):
        keep = rng.random(len(ids)) > 0.15
        hyp_ids = ids[keep] + 100
        if rng.random() < 0.1:  # an id switch between two tracks from now on
            a, b = rng.choice(np.arange(101, 107), 2, replace=False)
            swap[a], swap[b] = swap.get(b, b), swap.get(a, a)
        hyp_ids = np.array([swap.get(int(h), int(h)) for h in hyp_ids], int)
        hb = boxes[keep] + rng.normal(0, 3, (int(keep.sum()), 4))
        n_fp = rng.integers(0, 3)
        fp = rng.uniform(0, 200, (n_fp, 2))
        hb = np.concatenate([hb, np.concatenate([fp, fp + 25], 1)])
        hyp_ids = np.concatenate([hyp_ids, rng.integers(200, 260, n_fp)])
        _, first = np.unique(hyp_ids, return_index=True)  # no duplicate ids in a frame
        frames.append(Frame(ids, boxes, hyp_ids[np.sort(first)], hb[np.sort(first)]))
    assert_equal_to_references(frames)
