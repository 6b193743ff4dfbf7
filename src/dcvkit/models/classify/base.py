"""The face every classifier shows (timm's): ``forward_features`` -> ``forward_head``, plus named
intermediate feature maps. Saliency, feature-map plots, transfer learning and U-Net/R-CNN backbones are
written against this face, never against one architecture."""

from __future__ import annotations

from torch import Tensor, nn


class Classifier(nn.Module):
    """Base class of image classifiers.

    Subclasses set ``num_classes``, ``in_chans``, ``img_size`` and ``feature_layers`` (names of submodules
    whose outputs are the network's intermediate feature maps, shallow to deep), and implement
    :meth:`forward_features`, :meth:`forward_head` and :meth:`reset_classifier`.

    Shape:
        input: (B, in_chans, H, W) float, normalised; output: (B, num_classes) logits.
    """

    num_classes: int
    in_chans: int
    img_size: tuple[int, int]
    feature_layers: list[str]

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        raise NotImplementedError

    def reset_classifier(self, num_classes: int) -> None:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: Tensor, layers: list[str] | None = None) -> dict[str, Tensor]:
        """Outputs of the named submodules (default: ``feature_layers``) for input ``x``."""
        layers = list(layers or self.feature_layers)
        modules = dict(self.named_modules())
        missing = [n for n in layers if n not in modules]
        if missing:
            from dcvkit.errors import ConfigError

            raise ConfigError(f"unknown layer(s) {missing}; valid layers: {', '.join(self.feature_layers)}")
        out: dict[str, Tensor] = {}
        hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o)) for n in layers]
        try:
            self(x)
        finally:
            for h in hooks:
                h.remove()
        return out
