"""What every explanation method works on: a trained classifier seen as a function of the image's pixels.

Pixels are floats in [0, 1] (``uint8 / 255``), shape (C, H, W), so "make the pixel value larger by 2"
is a delta of 2/255 and a saliency map is d probability / d pixel in those units. :class:`Explainable`
applies the run's own input normalisation (dataset mean/std, or its augmentation's standardization) in
front of the network.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from dcvkit.choices import SALIENCY_SCORES
from dcvkit.errors import ConfigError, DataError


def class_score(logits: Tensor, target: int, kind: str = "logprob") -> Tensor:
    """(B, K) logits -> (B,) float64 score of class ``target``, ``kind`` one of ``SALIENCY_SCORES``.

    ``logprob`` is computed as ``-log(1 + sum_j exp(z_j - z_t))`` over the other classes j, not as
    ``z_t - logsumexp(z)``: the same number, but for a confident prediction (p = 1 - 1e-18) the latter rounds to
    exactly 0 even in float64 while the former keeps every digit of the tiny remainder."""
    z = logits.double()
    if kind == "logprob":
        m = z - z[:, target:target + 1]
        rest = torch.cat([m[:, :target], m[:, target + 1:]], 1).logsumexp(1)
        return -torch.logaddexp(torch.zeros_like(rest), rest)
    if kind == "logit":
        return z[:, target]
    if kind == "prob":
        return z.softmax(-1)[:, target]
    raise ConfigError(f"unknown saliency score '{kind}'; choose {', '.join(SALIENCY_SCORES)}")


@dataclass
class Explainable:
    """A classifier in eval mode with its input normalisation and class names.

    ``normalise`` maps pixels in [0, 1] (B, C, H, W) to the network's input. ``affine`` is its per-channel
    (scale, shift) when it is one (mean/std, featurewise statistics), else None (samplewise statistics,
    ZCA): incremental perturbation saliency needs it to normalise single pixels.
    """

    model: nn.Module
    normalise: Callable[[Tensor], Tensor]
    classes: list[str]
    affine: tuple[Tensor, Tensor] | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def in_chans(self) -> int:
        return int(self.model.in_chans)

    @property
    def img_size(self) -> tuple[int, int]:
        return tuple(self.model.img_size)  # type: ignore[return-value]

    def logits(self, x: Tensor) -> Tensor:
        """(B, C, H, W) pixels in [0, 1] -> (B, K) logits."""
        return self.model(self.normalise(x))

    def probs(self, x: Tensor) -> Tensor:
        """(B, C, H, W) pixels in [0, 1] -> (B, K) class probabilities."""
        return self.logits(x).softmax(-1)

    def score(self, x: Tensor, target: int, kind: str = "logprob") -> Tensor:
        """(B, C, H, W) pixels in [0, 1] -> (B,) float64 score of class ``target``: ``logprob`` (log p, the
        default: a confident p = 1.000 in float32 still moves in log p, computed from the logits in float64),
        ``logit`` (the raw class logit) or ``prob`` (p itself, the course's: saturates at 0 and 1)."""
        return class_score(self.logits(x), target, kind)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "Explainable":
        """Move (or cast, e.g. to float64 for exactness checks) the network and the normalisation."""
        self.model.to(device=device, dtype=dtype)
        if self.affine is not None:
            self.affine = tuple(t.to(device=device, dtype=dtype) for t in self.affine)  # type: ignore[assignment]
        return self

    def target(self, x: Tensor, target: int | str | None) -> tuple[int, float]:
        """The class to explain (default: the predicted one) and its probability for image ``x`` (C, H, W)."""
        with torch.inference_mode():
            p = self.probs(x.unsqueeze(0))[0]
        if target is None:
            k = int(p.argmax())
        elif isinstance(target, str) and not target.lstrip("-").isdigit():
            if target not in self.classes:
                raise ConfigError(f"--target {target}: not a class of this model; classes: {', '.join(self.classes)}")
            k = self.classes.index(target)
        else:
            k = int(target)
            if not 0 <= k < len(self.classes):
                raise ConfigError(f"--target {k}: out of range; this model has {len(self.classes)} classes (0-"
                                  f"{len(self.classes) - 1})")
        return k, float(p[k])


def channel_affine(model: nn.Module, normalise: Callable[[Tensor], Tensor], channels: int
                   ) -> tuple[Tensor, Tensor] | None:
    """(scale, shift) per channel if ``normalise`` is ``x * scale + shift`` per channel, else None
    (samplewise statistics or ZCA are recognised as not affine), on the model's device and dtype."""
    from dcvkit.models.normalise import probe_affine

    param = next(model.parameters())
    return probe_affine(normalise, channels, param.device, param.dtype)


def load_explainable(weights: str | os.PathLike, device: str = "auto") -> Explainable:
    """A dcvkit classification run (directory or checkpoint) as an :class:`Explainable`: its model and its
    :class:`~dcvkit.models.normalise.Normaliser` (the same input as training and predict give the network)."""
    from dcvkit.models.normalise import Normaliser
    from dcvkit.tasks.classify import load_classifier

    model, meta = load_classifier(weights, device)
    if getattr(model, "input_ndim", 4) != 4:
        raise ConfigError(f"{weights}: '{meta['model']}' classifies clips; explanations take single images")
    model.to(memory_format=torch.contiguous_format)  # saliency feeds odd-sized windows; keep it plain
    normaliser = Normaliser.from_meta(meta)
    param = next(model.parameters())
    affine = normaliser.per_channel()  # in pixel units; the explanations work on pixels in [0, 1]
    if affine is not None:
        affine = tuple(t.to(device=param.device, dtype=param.dtype) for t in (affine[0] * 255, affine[1]))
    return Explainable(model, normaliser.unit, list(meta["classes"]), affine)  # type: ignore[arg-type]


def read_images(paths: Sequence[str | os.PathLike], channels: int, size: tuple[int, int],
                log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> list[Tensor]:
    """Image files as (C, H, W) float pixels in [0, 1], converted and resized to the model's input with a
    notice on stderr (the model only takes its own size and channels)."""
    from dcvkit.data.folders import decode, probe

    out = []
    for p in map(Path, paths):
        if not p.is_file():
            raise DataError(f"{p}: no such image file")
        c, hw = probe(p)
        if hw != size or c != channels:
            log(f"note: {p}: {c}x{hw[0]}x{hw[1]} converted to the model's input {channels}x{size[0]}x{size[1]}")
        out.append(torch.from_numpy(decode(p, channels, size)).float() / 255.0)
    return out


def dataset_images(weights: str | os.PathLike, indices: Sequence[int], split: str = "test"
                   ) -> list[tuple[Tensor, str]]:
    """Images of the run's own dataset split (pixels in [0, 1]) with their true class names."""
    from dcvkit.config import from_dict
    from dcvkit.io import load_checkpoint
    from dcvkit.tasks.classify import ClassifyConfig, load_splits

    ckpt = load_checkpoint(weights, map_location="cpu")
    cfg = from_dict(ClassifyConfig, ckpt.get("config", {}), where=str(weights))
    data = getattr(load_splits(cfg), split)
    if data is None or not hasattr(data, "images"):
        raise DataError(f"{cfg.data}: no in-memory '{split}' split to take images from; give image files")
    bad = [i for i in indices if not 0 <= i < len(data)]
    if bad:
        raise ConfigError(f"--index {bad[0]}: the {split} split has {len(data)} images (0-{len(data) - 1})")
    return [(data.images[i].float() / 255.0, data.classes[int(data.labels[i])]) for i in indices]


def as_tensor_list(images: Any) -> list[Tensor]:
    """One image (C, H, W), a batch (N, C, H, W) or a list of images -> a list of (C, H, W) tensors."""
    if isinstance(images, Tensor):
        return [images] if images.ndim == 3 else list(images)
    return list(images)
