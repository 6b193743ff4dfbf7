"""Write explanations to a run directory: what ``dcv explain`` and the demo report call.

``explain_saliency`` writes, per image, ``<stem>.png`` (the image with the prediction, then one heat map
per method, side by side) and ``<stem>_<method>.npy`` (the raw (C, H, W) attributions), plus
``saliency.json`` (class, probability, seconds and settings of every map). ``explain_features`` writes
``features_<layer>.png`` per layer and ``filters.png``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from torch import Tensor

from dcvkit.explain.features import feature_maps, first_layer_filters
from dcvkit.explain.model import Explainable
from dcvkit.explain.saliency import SaliencyMap, saliency
from dcvkit.io import atomic_write, write_json


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def save_npy(path: Path, array: Tensor) -> None:
    buf = io.BytesIO()
    np.save(buf, array.numpy())
    atomic_write(path, buf.getvalue())


def explain_saliency(ex: Explainable, images: Sequence[tuple[Tensor, str]], methods: Sequence[str], out_dir: Path,
                     target: int | str | None = None, log: Callable[[str], None] = print, **options: Any
                     ) -> list[list[SaliencyMap]]:
    """Saliency maps of every (image, stem) with every method; returns them per image."""
    from dcvkit.viz.explain import plot_saliency

    out_dir.mkdir(parents=True, exist_ok=True)
    results, records = [], []
    for image, stem in images:
        maps = [saliency(ex, image, target, m, **options) for m in methods]
        name = _safe(stem)
        for m in maps:
            save_npy(out_dir / f"{name}_{m.method}.npy", m.attributions)
            records.append({"image": stem, "method": m.method, "target": m.target, "class": m.class_name,
                            "probability": m.probability, "seconds": m.seconds, **m.info})
            log(f"{stem}: {m.method:<12} {m.class_name} p={m.probability:.3f}  {m.seconds:.2f} s"
                + (f"  ({m.info['forward_passes']:,} forward passes, {m.info.get('engine', '')})".replace(", )", ")")
                   if "forward_passes" in m.info else "")
                + (f"  [warning: {m.info['degenerate']}]" if "degenerate" in m.info else ""))
        plot_saliency(image, maps, out_dir / f"{name}.png", title=stem)
        results.append(maps)
    write_json(out_dir / "saliency.json", records)
    return results


def explain_features(ex: Explainable, image: Tensor, out_dir: Path, layers: Sequence[str] | None = None,
                     filters: bool = True, stem: str = "") -> list[Path]:
    """Feature-map grids of ``layers`` (default: the model's feature layers) and the first-layer filters."""
    from dcvkit.viz.explain import plot_feature_maps, plot_filters

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for layer, maps in feature_maps(ex, image, layers).items():
        path = out_dir / f"features_{_safe(layer)}.png"
        plot_feature_maps(maps, path, title=f"{stem + ': ' if stem else ''}{layer} ({maps.shape[0]} channels, "
                                             f"{maps.shape[1]}x{maps.shape[2]})")
        written.append(path)
    if filters:
        name, w = first_layer_filters(ex.model)
        path = out_dir / "filters.png"
        plot_filters(w, path, title=f"first-layer filters: {name} ({w.shape[0]} of {w.shape[2]}x{w.shape[3]})")
        written.append(path)
    return written
