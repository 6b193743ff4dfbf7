"""FID with a judge: the Fréchet distance between features of generated and real images.

* :class:`Judge`: a trained dcvkit classifier run seen as a feature extractor (its penultimate layer) and
  a labeller (class coverage of samples): FID-FMNIST, not comparable to Inception FID but offline and fast;
* :func:`inception_fid`: the standard Inception-v3 FID through torchmetrics + torch-fidelity, when both and
  the weights are on this machine (never downloaded; the weights are read with ``weights_only=True``).

The distances and statistics themselves are :mod:`dcvkit.metrics.generative`'s pure functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dcvkit.metrics.generative import class_coverage, frechet_distance, gaussian_stats
from dcvkit.models.generate.base import to_unit
from dcvkit.models.normalise import Normaliser
from dcvkit.models.trained import load_run_model


class Judge:
    """A trained dcvkit classifier seen as a feature extractor (its penultimate layer, for the Fréchet
    distance) and a labeller (for class coverage). Images are uint8 (N, C, H, W) of any size: they are
    resized to the classifier's input size."""

    def __init__(self, weights: str | os.PathLike, device: str | torch.device = "cpu"):
        self.path = str(weights)
        self.model, self.meta = load_run_model(weights, "classify", "dcv classify train", str(device),
                                               channels_last=True)
        self.normalise = Normaliser.from_meta(self.meta)  # the classifier's own input, as in its training
        self.classes: list[str] = list(self.meta["classes"])
        self.size = self.model.img_size[0] if isinstance(self.model.img_size, tuple) else int(self.model.img_size)

    @torch.inference_mode()
    def features_and_probs(self, images: Tensor, batch_size: int = 500) -> tuple[Tensor, Tensor]:
        """(penultimate features (N, F) float64, class probabilities (N, K)): one forward pass per batch."""
        dev = next(self.model.parameters()).device
        feats, probs = [], []
        for i in range(0, len(images), batch_size):
            x = to_unit(images[i:i + batch_size].to(dev), self.size)
            x = self.normalise.unit(x).contiguous(memory_format=torch.channels_last)
            f = self.model.forward_head(self.model.forward_features(x), pre_logits=True).float()
            feats.append(f.double().cpu())
            probs.append(self.model.get_classifier()(f).softmax(1).cpu())
        return torch.cat(feats), torch.cat(probs)

    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(features (N, F) float64, predicted class ids (N,))."""
        feats, probs = self.features_and_probs(images)
        return feats, probs.argmax(1)

    def label(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(class ids (N,), the classifier's probability of that class (N,))."""
        conf, ids = self.features_and_probs(images)[1].max(1)
        return ids, conf

    def score(self, images: Tensor, ref: tuple[Tensor, Tensor], asked: Tensor | None = None) -> dict[str, Any]:
        """FID-FMNIST of generated uint8 ``images`` against reference statistics ``ref``, their class coverage,
        and (``asked``: the classes a conditional model was asked for) the share classified as asked."""
        feats, ids = self(images)
        out: dict[str, Any] = {"fid": frechet_distance(*gaussian_stats(feats), *ref),
                               "coverage": class_coverage(ids, self.classes)}
        if asked is not None:
            out["conditional_accuracy"] = float((ids == asked).float().mean())
        return out

    def stats(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return gaussian_stats(self(images)[0])


INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name for the FID Inception


def inception_weights() -> Path | None:
    """The FID Inception weights if they are on this machine: ``$DCV_INCEPTION_WEIGHTS`` or torch-fidelity's
    file in the torch hub cache. Never downloaded by dcvkit."""
    env = os.environ.get("DCV_INCEPTION_WEIGHTS")
    cands = [Path(env)] if env else []
    cands.append(Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS)
    return next((p for p in cands if p.is_file()), None)


def _safe_inception(cls: Any, weights: Path) -> Any:
    """torchmetrics' FID metric on local weights. torch-fidelity reads the file with ``torch.load(...,
    weights_only=False)``; dcvkit loads every checkpoint with ``weights_only=True``, so that is forced here
    while the extractor is built (a file whose pickle would run code is refused, and runs nothing)."""
    from unittest import mock

    real_load = torch.load

    def weights_only_load(f: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return real_load(f, *args, **kwargs)

    try:
        with mock.patch.object(torch, "load", weights_only_load):
            return cls(feature=2048, feature_extractor_weights_path=str(weights))
    except Exception as e:  # UnpicklingError for unsafe pickles, RuntimeError for wrong tensors
        from dcvkit.errors import CheckpointError

        raise CheckpointError(f"{weights}: not usable as the FID Inception weights ({str(e).splitlines()[0][:200]}); "
                              "use torch-fidelity's weights-inception-2015-12-05-6726825d.pth") from None


def inception_fid(real: Tensor, fake: Tensor, device: torch.device, batch: int = 100) -> tuple[float | None, str]:
    """Standard FID (Inception-v3 pool features, 2048-d) through torchmetrics + torch-fidelity, when both and
    the weights are present locally; else (None, the reason). uint8 (N, C, H, W) images, gray repeated to RGB."""
    weights = inception_weights()
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE
    except ImportError:
        return None, "skipped: torchmetrics is not installed (pip install 'dcvkit[fid]')"
    if not _TORCH_FIDELITY_AVAILABLE:
        return None, "skipped: torch-fidelity is not installed (pip install 'dcvkit[fid]')"
    if weights is None:
        return None, (f"skipped: no Inception weights on this machine (put {INCEPTION_WEIGHTS} in "
                      f"{Path(torch.hub.get_dir()) / 'checkpoints'} or set DCV_INCEPTION_WEIGHTS)")
    fid = _safe_inception(FrechetInceptionDistance, weights).to(device)
    for images, is_real in ((real, True), (fake, False)):
        for i in range(0, len(images), batch):
            x = images[i:i + batch].to(device)
            fid.update(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x, real=is_real)
    return float(fid.compute()), f"Inception-v3 ({weights.name}), {len(real)} real vs {len(fake)} generated"


__all__ = ["Judge", "inception_fid", "inception_weights", "INCEPTION_WEIGHTS"]
