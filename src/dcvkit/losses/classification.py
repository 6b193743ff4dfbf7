"""Classification losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from dcvkit.choices import CLASSIFICATION_LOSSES as LOSSES
from dcvkit.errors import ConfigError


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0, label_smoothing: float = 0.0) -> Tensor:
    """Focal loss (Lin et al. 2017): cross-entropy scaled by (1 - p_t)^gamma, so easy examples count less.

    Shape:
        logits: (B, K); target: (B,) class ids; returns a scalar (mean over the batch).
    """
    ce = F.cross_entropy(logits, target, reduction="none", label_smoothing=label_smoothing)
    p_t = logits.float().softmax(-1).gather(1, target[:, None]).squeeze(1)
    return ((1 - p_t) ** gamma * ce).mean()


def classification_loss(name: str, logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """The loss called ``name`` (``cross_entropy`` or ``focal``) of logits (B, K) against ids (B,)."""
    if name == "cross_entropy":
        return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    if name == "focal":
        return focal_loss(logits, target, label_smoothing=label_smoothing)
    raise ConfigError(f"unknown loss '{name}'; choose one of {', '.join(LOSSES)}")
