"""Scene-graph data in memory: images letterboxed to one size with their objects (boxes, classes) and
relations (subject, object, predicate), from generated graph scenes (:mod:`dcvkit.data.graph_scenes`) or a
Visual-Genome-like JSON file of images of any size (:mod:`dcvkit.data.vg`).

Batches are ``(images uint8 (B, C, H, W), boxes [(n_i, 4)], labels [(n_i,)], relations [(m_i, 3)])`` in the
letterboxed images' pixels, in StreamLoader's epoch order; ``placements`` map each image back to its
original pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dcvkit.data.core import InMemoryImages, PerImageLoader
from dcvkit.data.letterbox import PlacedObjects, Placement
from dcvkit.errors import DataError


@dataclass
class SceneGraphTensors(PlacedObjects, InMemoryImages):
    """Images with their scene graphs (see the module docstring)."""

    images: Tensor
    boxes: list[Tensor]
    labels: list[Tensor]
    relations: list[Tensor]
    classes: list[str]
    predicates: list[str]
    files: list[str] = field(default_factory=list)
    placements: list[Placement] | None = None

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, "images must be (N, C, H, W) uint8"
        assert len(self.boxes) == len(self.labels) == len(self.relations) == len(self.images)

    @property
    def triples(self) -> int:
        return sum(len(r) for r in self.relations)

    def subset(self, index: Tensor) -> "SceneGraphTensors":
        idx = index.tolist()
        return SceneGraphTensors(self.images[index], [self.boxes[i] for i in idx], [self.labels[i] for i in idx],
                                 [self.relations[i] for i in idx], self.classes, self.predicates,
                                 [self.files[i] for i in idx] if self.files else [],
                                 [self.placements[i] for i in idx] if self.placements is not None else None)

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0,
               shard=None) -> "SceneGraphLoader":
        from dcvkit.data.core import Shard

        return SceneGraphLoader(self, batch_size, shuffle=shuffle, seed=seed, shard=shard or Shard())

    def detection(self):
        """The same images and objects as :class:`~dcvkit.data.detection.DetectionTensors` (for a detector)."""
        from dcvkit.data.detection import DetectionTensors

        return DetectionTensors(self.images, self.boxes, self.labels, self.classes, self.files, None,
                                self.placements)


class SceneGraphLoader(PerImageLoader):
    """Batches of :class:`SceneGraphTensors`: ``(images, [boxes], [labels], [relations])``."""

    fields = ("boxes", "labels", "relations")


def from_graph_scenes(items, n: int, seed: int = 0, cfg=None, progress: bool = False) -> SceneGraphTensors:
    """``n`` graph scenes (:func:`dcvkit.data.graph_scenes.graph_scene`) of ``items``, in memory."""
    from dcvkit.data.graph_scenes import PREDICATES, GraphSceneConfig, graph_scene

    cfg = cfg or GraphSceneConfig()
    it = range(n)
    if progress:
        from dcvkit.engine.loop import console
        from dcvkit.progress import track

        it = track(it, description=f"drawing {n} graph scenes", console=console)
    images, boxes, labels, rels = [], [], [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of tiny ops (see data.scenes)
    try:
        for i in it:
            d = graph_scene(items, cfg, seed, i)
            images.append(d["image"])
            boxes.append(torch.from_numpy(d["boxes"]).float())
            labels.append(torch.from_numpy(d["labels"]))
            rels.append(torch.from_numpy(d["relations"]))
    finally:
        torch.set_num_threads(threads)
    stacked = torch.stack(images) if images else torch.zeros(0, 3, cfg.size, cfg.size, dtype=torch.uint8)
    return SceneGraphTensors(stacked, boxes, labels, rels, list(items.classes), list(PREDICATES),
                             [f"scene_{i:06d}" for i in range(n)])


def from_annotations(ann, size: tuple[int, int] | None = None) -> SceneGraphTensors:
    """A VG-like dataset's images, decoded and letterboxed to ``size`` (default: the first image's, longest
    side at most 640, sides multiples of 32), with their boxes moved into the letterbox."""
    from dcvkit.data.annotations import safe_path
    from dcvkit.data.letterbox import default_size, read_letterboxed

    first = ann.images[0]
    size = size or default_size(first.height, first.width, None)
    images, boxes, labels, rels, placements = [], [], [], [], []
    for im in ann.images:
        arr, p = read_letterboxed(safe_path(ann.root, im.file, str(ann.root)), 3, size)
        images.append(torch.from_numpy(np.ascontiguousarray(arr)))
        boxes.append(p.to_letterbox(torch.from_numpy(im.boxes)).float())
        labels.append(torch.from_numpy(im.labels))
        rels.append(torch.from_numpy(im.relations))
        placements.append(p)
    return SceneGraphTensors(torch.stack(images), boxes, labels, rels, list(ann.classes), list(ann.predicates),
                             [im.file for im in ann.images], placements)


def to_annotations(data: SceneGraphTensors, root: Path, image_dir: str = "images"):
    """``data`` (generated, unletterboxed) as :class:`~dcvkit.data.vg.GraphAnnotations` with image files
    ``<image_dir>/<name>.png``."""
    from dcvkit.data.vg import GraphAnnotations, GraphImage

    h, w = data.img_size
    return GraphAnnotations(root, list(data.classes), list(data.predicates), [
        GraphImage(f"{image_dir}/{i:06d}.png", w, h, data.boxes[i].double().numpy(), data.labels[i].numpy(),
                   data.relations[i].numpy()) for i in range(len(data))])


def write_graph_scenes(data: SceneGraphTensors, out: str | os.PathLike, provenance: dict | None = None) -> Path:
    """Write generated scene graphs into a new folder: images/ (PNG) and ``scene_graphs.json`` (VG-like)."""
    from dcvkit.data import vg
    from dcvkit.data.annotations import empty_out_dir, write_png

    root = empty_out_dir(out)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(len(data)):
        write_png(root / "images" / f"{i:06d}.png", data.images[i].permute(1, 2, 0).numpy())
    vg.write(to_annotations(data, root), root / "scene_graphs.json",
             {"generator": "dcvkit graph scenes", **(provenance or {})})
    return root


def check_vocabulary(data: SceneGraphTensors, classes: list[str], predicates: list[str], where: str) -> None:
    """``data`` must name the same classes and predicates (in order) as a model's; else a one-line error."""
    for what, have, want in (("classes", data.classes, classes), ("predicates", data.predicates, predicates)):
        if list(have) != list(want):
            raise DataError(f"{where}: its {what} {list(have)[:8]} differ from the model's {list(want)[:8]}; "
                            f"give data with the model's {what} (in the same order)")


__all__ = ["SceneGraphTensors", "SceneGraphLoader", "from_graph_scenes", "from_annotations", "to_annotations",
           "write_graph_scenes", "check_vocabulary"]
