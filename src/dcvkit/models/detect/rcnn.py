"""R-CNN (Girshick et al. 2014): selective-search proposals, the crop classifier of
:class:`~dcvkit.models.detect.crop.CropDetector` on each, and a second stage (sections 2.3 and C) on the
fine-tuned CNN's features:

* one linear SVM per class (scikit-learn ``LinearSVC``): positives are the ground-truth boxes of the class,
  negatives the proposals overlapping every box of the class by less than ``neg_iou`` (0.3); the negatives
  are too many to fit at once, so training starts from a random subset and **hard-negative mining** adds,
  round after round, the negatives the current SVM scores inside the margin (score > -1);
* ridge regression per class (scikit-learn ``Ridge``) from the features of proposals with IoU >= 0.6 to
  the box deltas of their ground truth.

The fitted hyperplanes are written into the detector's ``svm`` and ``bbox_reg`` linear layers, so the
checkpoint stays plain tensors (``weights_only=True``) and inference is one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.ops import box_iou

from dcvkit.models.detect.box_coder import decode, encode
from dcvkit.models.detect.crop import CropDetector
from dcvkit.models.registry import register_model


@dataclass(frozen=True)
class SVMConfig:
    c: float = 0.01               # LinearSVC's C on standardised features
    neg_iou: float = 0.3          # negatives overlap every box of the class by less than this
    reg_iou: float = 0.6          # box regressors learn from proposals at least this close to a box
    rounds: int = 3               # hard-negative mining rounds after the first fit
    start_negatives: int = 5000   # random negatives of the first fit
    max_new: int = 10000          # hard negatives added per round, at most
    proposals_per_image: int = 300
    ridge_alpha: float = 100.0
    bbox_reg: bool = True


class RCNN(CropDetector):
    """The crop classifier on selective-search proposals, with room for the per-class linear SVMs and box
    regressors that :meth:`second_stage` fits after the CNN (until then it scores regions by its softmax)."""

    proposal_method = "selective_search"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        dim = self.backbone.get_classifier().in_features
        # Filled by fit_svms: standardisation of the features, SVM hyperplanes, ridge box regressors.
        self.register_buffer("feat_mean", torch.zeros(dim))
        self.register_buffer("feat_std", torch.ones(dim))
        self.register_buffer("svm_fitted", torch.zeros((), dtype=torch.bool))
        self.svm = nn.Linear(dim, self.num_classes)
        self.bbox_reg = nn.Linear(dim, 4 * self.num_classes)
        for p in (*self.svm.parameters(), *self.bbox_reg.parameters()):
            p.requires_grad_(False)
            nn.init.zeros_(p)

    def predict_regions(self, images: Tensor, regions: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        if not bool(self.svm_fitted):
            return super().predict_regions(images, regions)
        flat = torch.cat(list(regions)).to(images.device).float()
        f = (self.features(images, regions) - self.feat_mean) / self.feat_std
        scores = torch.sigmoid(self.svm(f))  # monotone in the SVM margin; [0, 1] for thresholds and plots
        deltas = self.bbox_reg(f).view(-1, self.num_classes, 4)
        return scores, decode(deltas, flat[:, None])

    def second_stage(self, data: Any, preprocess: Any, options: Mapping[str, Any], progress: bool = False
                     ) -> dict[str, Any]:
        """The SVMs (hard-negative mining) and box regressors on the CNN's features of the proposals of the
        first ``svm_images`` training images; options ``svm_c``, ``svm_rounds``, ``bbox_reg``, ``seed``."""
        import time

        n = min(int(options.get("svm_images", 600)), len(data))
        assert data.proposals is not None, "R-CNN's second stage needs the training images' proposals"
        cfg = SVMConfig(c=float(options.get("svm_c", SVMConfig.c)), rounds=int(options.get("svm_rounds", 3)),
                        bbox_reg=bool(options.get("bbox_reg", True)))
        feats = collect_features(self, data.images[:n], data.boxes[:n], data.labels[:n], data.proposals[:n],
                                 preprocess, cfg.proposals_per_image, progress=progress)
        t0 = time.perf_counter()
        stats: dict[str, Any] = fit_svms(self, feats, cfg, int(options.get("seed", 0)))
        stats["seconds"] = round(time.perf_counter() - t0, 1)
        if progress:
            from dcvkit.engine.loop import console

            console.print(f"R-CNN SVMs: {stats['positives']} positives, {stats['hard_negatives_added']} hard "
                          f"negatives mined over {cfg.rounds} rounds ({stats['seconds']} s)", highlight=False)
        return {"svm": stats}


@register_model("detect")
def rcnn(num_classes: int = 10, in_chans: int = 3, img_size: int | Sequence[int] = 128, backbone: str = "cnn",
         crop_size: int = 40, width: float | None = None, **kwargs) -> RCNN:
    """R-CNN: selective search, a CNN on each warped proposal, linear SVMs per class, ridge box regression."""
    return RCNN(num_classes=num_classes, in_chans=in_chans, img_size=img_size, backbone=backbone,
                crop_size=crop_size, width=width, **kwargs)


@torch.no_grad()
def collect_features(model: CropDetector, images: Tensor, boxes: list[Tensor], labels: list[Tensor],
                     proposals: list[Tensor], prep: Callable[[Tensor], Tensor], per_image: int,
                     progress: bool = False) -> dict[str, Tensor]:
    """Features of every ground-truth box and of the first ``per_image`` proposals of each image, with each
    region's best IoU per class (R, C), its best-matching box, that box's IoU and label, and ``gt_label``:
    the class of a ground-truth region (a positive), -1 for a proposal."""
    model.eval()
    dev = next(model.parameters()).device
    parts: dict[str, list[Tensor]] = {k: [] for k in ("features", "iou", "gt_label", "regions", "match_box",
                                                      "match_iou", "match_label")}
    C = model.num_classes
    it = range(len(images))
    if progress:
        from dcvkit.progress import track

        it = track(it, description="R-CNN features for the SVMs")
    for i in it:
        gt, gl = boxes[i], labels[i]
        props = proposals[i][:per_image]
        regions = torch.cat([gt, props])
        per_class = torch.zeros(len(regions), C)
        best, best_box = torch.zeros(len(regions)), torch.zeros(len(regions), 4)
        best_label = torch.full((len(regions),), -1, dtype=torch.long)
        if len(gt):
            iou = box_iou(regions, gt)                       # (R, G)
            for k in gl.unique().tolist():
                per_class[:, k] = iou[:, gl == k].max(1).values
            best, idx = iou.max(1)
            best_box, best_label = gt[idx], gl[idx]
        parts["features"].append(model.features(prep(images[i:i + 1].to(dev)), [regions]).float().cpu())
        parts["iou"].append(per_class)
        parts["gt_label"].append(torch.cat([gl, torch.full((len(props),), -1, dtype=torch.long)]))
        parts["regions"].append(regions)
        parts["match_box"].append(best_box)
        parts["match_iou"].append(best)
        parts["match_label"].append(best_label)
    return {k: torch.cat(v) for k, v in parts.items()}


def fit_svms(model: RCNN, data: dict[str, Tensor], cfg: SVMConfig = SVMConfig(), seed: int = 0
             ) -> dict[str, float]:
    """Fit the per-class SVMs (with hard-negative mining) and box regressors into ``model``; returns counts."""
    from sklearn.linear_model import Ridge
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(seed)
    X = data["features"]
    mean, std = X.mean(0), X.std(0).clamp_min(1e-6)
    Z = ((X - mean) / std).numpy()
    C = model.num_classes
    W = np.zeros((C, Z.shape[1]), dtype=np.float32)
    b = np.zeros(C, dtype=np.float32)
    stats = {"positives": 0, "negatives_seen": 0, "hard_negatives_added": 0}
    is_gt = (data["gt_label"] >= 0).numpy()
    for k in range(C):
        pos = np.flatnonzero(is_gt & (data["gt_label"].numpy() == k))
        neg_all = np.flatnonzero(~is_gt & (data["iou"][:, k].numpy() < cfg.neg_iou))
        if len(pos) == 0 or len(neg_all) == 0:
            continue
        neg = rng.choice(neg_all, size=min(cfg.start_negatives, len(neg_all)), replace=False)
        svm = LinearSVC(C=cfg.c, class_weight={1: 2.0, 0: 1.0}, max_iter=5000, dual="auto")
        for r in range(cfg.rounds + 1):
            idx = np.concatenate([pos, neg])
            y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
            svm.fit(Z[idx], y)
            if r == cfg.rounds:
                break
            scores = svm.decision_function(Z[neg_all])
            hard = np.setdiff1d(neg_all[scores > -1.0], neg, assume_unique=False)
            if len(hard) == 0:
                break
            hard = hard[np.argsort(-svm.decision_function(Z[hard]))[: cfg.max_new]]
            neg = np.concatenate([neg, hard])
            stats["hard_negatives_added"] += len(hard)
        W[k], b[k] = svm.coef_[0], svm.intercept_[0]
        stats["positives"] += len(pos)
        stats["negatives_seen"] += len(neg)
    model.feat_mean.copy_(mean)
    model.feat_std.copy_(std)
    model.svm.weight.data.copy_(torch.from_numpy(W))
    model.svm.bias.data.copy_(torch.from_numpy(b))
    if cfg.bbox_reg:
        Wr = np.zeros((C, 4, Z.shape[1]), dtype=np.float32)
        br = np.zeros((C, 4), dtype=np.float32)
        close = (data["match_iou"] >= cfg.reg_iou) & (data["gt_label"] < 0)
        for k in range(C):
            sel = (close & (data["match_label"] == k)).nonzero().flatten()
            if len(sel) < 10:
                continue
            t = encode(data["regions"][sel], data["match_box"][sel]).numpy()
            ridge = Ridge(alpha=cfg.ridge_alpha).fit(Z[sel.numpy()], t)
            Wr[k], br[k] = ridge.coef_, ridge.intercept_
        model.bbox_reg.weight.data.copy_(torch.from_numpy(Wr.reshape(4 * C, -1)))
        model.bbox_reg.bias.data.copy_(torch.from_numpy(br.reshape(-1)))
    model.svm_fitted.fill_(True)
    return stats


__all__ = ["RCNN", "rcnn", "SVMConfig", "collect_features", "fit_svms"]
