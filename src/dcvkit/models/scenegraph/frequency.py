"""The frequency baseline (Zellers et al. 2018, "Neural Motifs"): a pair's predicate is the one most often
seen between its two classes in training. Blind to the pixels and the boxes of the pair; its objects'
classes, when not given (SGCls), come from the shared RoI classifier."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from dcvkit.models.registry import register_model
from dcvkit.models.scenegraph.base import SceneGraphModel


class FrequencyModel(SceneGraphModel):
    """Predicate logits = the frequency bias alone (:meth:`SceneGraphModel.set_prior`)."""

    sees = ("classes",)

    def relation_logits(self, features, image, boxes, labels, objects, pairs, pixels) -> Tensor:
        return objects.new_zeros(len(pairs), self.num_predicates + 1)


@register_model("scenegraph")
def frequency(num_classes: int = 10, num_predicates: int = 11, in_chans: int = 3,
              img_size: int | Sequence[int] = 128, width: float = 1.0) -> FrequencyModel:
    """Motifs' frequency baseline: p(predicate | subject class, object class) from the training counts."""
    return FrequencyModel(num_classes=num_classes, num_predicates=num_predicates, in_chans=in_chans,
                          img_size=img_size, width=width)


__all__ = ["FrequencyModel", "frequency"]
