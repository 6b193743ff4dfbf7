"""Pose metrics: OKS by its formula, keypoint AP (faster-coco-eval) equal to pycocotools', a perfect
prediction scoring 1, a keypoint set of five with its own sigmas, PCK."""

from __future__ import annotations

import numpy as np
import pytest

from dcvkit.data.keypoints import COCO17, COCO17_SIGMAS
from dcvkit.metrics.pose import keypoint_ap, oks, pck


def people(seed: int = 0, images: int = 6, per: int = 3, k: int = 17):
    rng = np.random.default_rng(seed)
    gk, gb, ga = [], [], []
    for _ in range(images):
        kp = np.concatenate([rng.uniform(10, 150, (per, k, 2)), rng.choice([0, 1, 2], (per, k, 1), p=[.1, .2, .7])], 2)
        kp[kp[..., 2] == 0] = 0
        lo, hi = kp[..., :2].min(1), kp[..., :2].max(1)
        gk.append(kp)
        gb.append(np.concatenate([lo, hi], 1))
        ga.append(((hi - lo).prod(1) * 0.6))
    return gk, gb, ga


def test_oks_follows_its_formula():
    """Every keypoint off by d = f * sqrt(area): OKS = mean over keypoints of exp(-f^2 / (2 (2 sigma)^2))."""
    gt = np.zeros((17, 3))
    gt[:, :2] = np.arange(34).reshape(17, 2)
    gt[:, 2] = 2
    area = 2500.0
    for f in (0.01, 0.05, 0.1):
        pred = gt[:, :2] + [f * np.sqrt(area), 0]
        expected = np.mean(np.exp(-f ** 2 / (2 * (2 * np.array(COCO17_SIGMAS)) ** 2)))
        assert oks(gt, area, pred, COCO17_SIGMAS) == pytest.approx(expected, rel=1e-9)
    gt[::2, 2] = 0  # unlabelled keypoints do not count
    pred = gt[:, :2] + [0.05 * 50, 0]
    expected = np.mean(np.exp(-0.05 ** 2 / (2 * (2 * np.array(COCO17_SIGMAS)[1::2]) ** 2)))
    assert oks(gt, area, pred, COCO17_SIGMAS) == pytest.approx(expected, rel=1e-9)


def test_ground_truth_as_predictions_scores_one():
    gk, gb, ga = people()
    r = keypoint_ap(gk, gb, ga, gk, [np.ones(len(k)) for k in gk], COCO17, COCO17_SIGMAS)
    assert r["ap"] == pytest.approx(1.0) and r["ap50"] == 1.0 and r["ar"] == pytest.approx(1.0)
    p = pck(gk, gb, ga, gk, COCO17, COCO17_SIGMAS)
    assert p["pck@0.2"] == 1.0 and all(x["error_px"] in (0.0, None) for x in p["per_keypoint"])


@pytest.mark.parametrize("seed", range(3))
def test_keypoint_ap_equals_pycocotools(seed):
    gk, gb, ga = people(seed)
    rng = np.random.default_rng(seed + 10)
    pk = [k + np.concatenate([rng.normal(0, 4, k[..., :2].shape), np.zeros(k[..., 2:].shape)], -1) for k in gk]
    pk = [np.concatenate([p, rng.uniform(0, 150, (1, 17, 3))]) for p in pk]  # a false positive per image
    ps = [rng.uniform(0.2, 1, len(p)) for p in pk]
    fast = keypoint_ap(gk, gb, ga, pk, ps, COCO17, COCO17_SIGMAS, "faster_coco_eval")
    ref = keypoint_ap(gk, gb, ga, pk, ps, COCO17, COCO17_SIGMAS, "pycocotools")
    assert 0 < ref["ap"] < 1
    for key in ("ap", "ap50", "ap75", "ar", "ar50", "ar75"):
        assert fast[key] == pytest.approx(ref[key], abs=1e-4), key


def test_five_keypoints_with_their_own_sigmas():
    names = ("head", "left_hand", "right_hand", "left_foot", "right_foot")
    sigmas = (0.03, 0.05, 0.05, 0.07, 0.07)
    gk, gb, ga = people(1, k=5)
    rng = np.random.default_rng(3)
    pk = [k + np.concatenate([rng.normal(0, 3, k[..., :2].shape), np.zeros(k[..., 2:].shape)], -1) for k in gk]
    ps = [np.ones(len(p)) for p in pk]
    fast = keypoint_ap(gk, gb, ga, pk, ps, names, sigmas, "faster_coco_eval")
    ref = keypoint_ap(gk, gb, ga, pk, ps, names, sigmas, "pycocotools")
    assert fast["keypoints"] == 5 and 0 < fast["ap"] <= 1 and fast["ap"] == pytest.approx(ref["ap"], abs=1e-4)
    wider = keypoint_ap(gk, gb, ga, pk, ps, names, tuple(2 * s for s in sigmas))
    assert wider["ap"] >= fast["ap"]  # looser sigmas forgive the same errors more


def test_pck_counts_missed_objects_as_wrong():
    gk, gb, ga = people(2, images=2, per=2)
    p = pck(gk, gb, ga, [k[:1] for k in gk], COCO17, COCO17_SIGMAS)  # one of the two people predicted (exactly)
    labelled = [(k[..., 2] > 0).sum(1) for k in gk]
    assert p["pck@0.2"] == pytest.approx(sum(n[0] for n in labelled) / sum(n.sum() for n in labelled))
