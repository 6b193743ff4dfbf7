"""The geometry model: what the two boxes and the two classes say about a pair (relative position, size,
overlap; :func:`~dcvkit.models.scenegraph.base.pair_geometry`), with the frequency bias. Sees no pixels of
the pair: depth and appearance are out of its reach by construction."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from dcvkit.models.registry import register_model
from dcvkit.models.scenegraph.base import SceneGraphModel, pair_geometry

GEOMETRY_FEATURES = 16


def geometry_mlp(embed: int, hidden: int, outputs: int) -> nn.Sequential:
    """The geometry model's head: (box-pair geometry, two class embeddings of ``embed``) -> ``outputs`` logits."""
    return nn.Sequential(nn.Linear(GEOMETRY_FEATURES + 2 * embed, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, outputs))


def geometry_inputs(boxes: Tensor, labels: Tensor, pairs: Tensor, size: tuple[int, int], embed: nn.Embedding
                    ) -> Tensor:
    """(P, 16 + 2 E) what :func:`geometry_mlp` reads: the pair's geometry and its classes' embeddings."""
    return torch.cat([pair_geometry(boxes, pairs, size), embed(labels[pairs[:, 0]]), embed(labels[pairs[:, 1]])], 1)


class GeometryModel(SceneGraphModel):
    """Predicate logits = MLP(box-pair geometry, subject and object class embeddings) + frequency bias."""

    sees = ("classes", "boxes")

    def __init__(self, *, embed: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.embed = nn.Embedding(self.num_classes, embed)
        self.head = geometry_mlp(embed, self.hidden, self.num_predicates + 1)

    def relation_logits(self, features, image, boxes, labels, objects, pairs, pixels) -> Tensor:
        return self.head(geometry_inputs(boxes, labels, pairs, self.img_size, self.embed))


@register_model("scenegraph")
def geometry(num_classes: int = 10, num_predicates: int = 11, in_chans: int = 3,
             img_size: int | Sequence[int] = 128, width: float = 1.0) -> GeometryModel:
    """Box-pair geometry + class embeddings -> an MLP, with the frequency bias."""
    return GeometryModel(num_classes=num_classes, num_predicates=num_predicates, in_chans=in_chans,
                         img_size=img_size, width=width)


__all__ = ["GeometryModel", "geometry", "geometry_mlp", "geometry_inputs", "GEOMETRY_FEATURES"]
