"""The face every classifier shows (timm's): ``forward_features`` -> ``forward_head``, plus named
intermediate feature maps. Saliency, feature-map plots, transfer learning and U-Net/R-CNN backbones are
written against this face, never against one architecture."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

SMALL_INPUT = 64  # below this size (e.g. 28x28, 32x32) the "auto" stem keeps resolution instead of striding


def pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, at least 4."""
    return max(4, int(round(channels * width)))


def resolve_stem(stem: str, img_size: tuple[int, int]) -> str:
    """``auto`` -> ``small`` (stride-1 3x3 stem, no early pooling) under 64 px, else ``imagenet``."""
    from dcvkit.errors import ConfigError

    if stem == "auto":
        return "small" if min(img_size) < SMALL_INPUT else "imagenet"
    if stem not in ("small", "imagenet"):
        raise ConfigError(f"unknown stem '{stem}'; choose auto, small or imagenet")
    return stem


def leaves(module: nn.Module) -> list[nn.Module]:
    """The leaf modules of nested ``nn.Sequential`` containers, in order."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in leaves(child)]
    return [module]


class Classifier(nn.Module):
    """Base class of image classifiers.

    Subclasses set ``num_classes``, ``in_chans``, ``img_size``, ``feature_layers`` (names of submodules
    whose outputs are the network's intermediate feature maps, shallow to deep) and ``head_name`` (the
    final linear layer; everything else is the backbone for transfer learning), and implement
    :meth:`forward_features` and :meth:`forward_head`.

    Shape:
        input: (B, in_chans, H, W) float, normalised; output: (B, num_classes) logits.
    """

    num_classes: int
    in_chans: int
    img_size: tuple[int, int]
    feature_layers: list[str]
    head_name: str = "fc"
    input_ndim: int = 4  # 5 for models of clips (B, T, C, H, W)
    export_inputs: tuple[str, ...] = ("images",)  # what dcv export's graph takes and gives (forward_export)
    export_outputs: tuple[str, ...] = ("probs",)

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_export(self, x: Tensor) -> Tensor:
        """Class probabilities (B, num_classes): what ``dcv export`` puts in the graph."""
        return self(x).softmax(1)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        raise NotImplementedError

    def get_classifier(self) -> nn.Linear:
        return self.get_submodule(self.head_name)

    def feature_chain(self) -> list[nn.Module] | None:
        """The leaf modules that :meth:`forward_features` applies one after the other, when it is such a
        plain chain (no branches, no skips), else None. Incremental perturbation saliency recomputes only
        the window of each layer that a changed pixel reaches; it needs this chain."""
        return None

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final linear layer by a freshly initialised one with ``num_classes`` outputs."""
        old = self.get_classifier()
        parent, _, leaf = self.head_name.rpartition(".")
        setattr(self.get_submodule(parent) if parent else self, leaf, nn.Linear(old.in_features, num_classes))
        self.num_classes = num_classes

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: Tensor, layers: list[str] | None = None) -> dict[str, Tensor]:
        """Outputs of the named submodules (default: ``feature_layers``) for input ``x``."""
        return self._hooked(self, x, list(layers or self.feature_layers))[1]

    def features_and_intermediates(self, x: Tensor, layers: list[str]) -> tuple[Tensor, dict[str, Tensor]]:
        """:meth:`forward_features` of ``x`` and the outputs of the named submodules on the way (one pass:
        a detector's feature pyramid reads the earlier stages)."""
        return self._hooked(self.forward_features, x, layers)

    def _hooked(self, fn, x: Tensor, layers: list[str]) -> tuple[Tensor, dict[str, Tensor]]:
        try:  # get_submodule walks the path only: this runs on every training step of a pyramid's detector
            modules = {n: self.get_submodule(n) for n in layers}
        except AttributeError:
            from dcvkit.errors import ConfigError

            names = dict(self.named_modules())
            missing = [n for n in layers if n not in names]
            raise ConfigError(f"unknown layer(s) {missing}; valid layers: {', '.join(self.feature_layers)}") from None
        out: dict[str, Tensor] = {}
        hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o)) for n in layers]
        try:
            y = fn(x)
        finally:
            for h in hooks:
                h.remove()
        return y, out


class FeaturesClassifier(Classifier):
    """AlexNet/VGG layout (torchvision's names): ``features`` (convs) -> ``avgpool`` -> ``classifier``, a
    Sequential of dense layers whose last one (``classifier.6``) is the head."""

    head_name = "classifier.6"
    features: nn.Sequential
    avgpool: nn.Module
    classifier: nn.Sequential

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, in_chans, H, W) -> (B, C, h, w) output of the last conv block."""
        return self.features(x)

    def feature_chain(self) -> list[nn.Module]:
        return leaves(self.features)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.classifier[:-1](self.avgpool(x).flatten(1))
        return x if pre_logits else self.classifier[-1](x)
