"""``dcv bench augment``: the same augmentation pipeline three ways, side by side in one process.

The pipeline: rotation in [-15, 15] degrees, shifts of up to 10% in x and y, zoom in [0.9, 1.1], a random
horizontal flip and brightness in [0.8, 1.2], bilinear, zeros outside the image, on batches of uint8 images.

* ``dcvkit``: :class:`~dcvkit.augment.Augmenter` on whole batches: parameters drawn per image, one
  ``grid_sample`` per batch (on ``--device``).
* ``torchvision v2``: ``RandomAffine + RandomHorizontalFlip + ColorJitter(brightness)`` applied per sample in a
  ``Dataset.__getitem__``, batched by a ``DataLoader`` (``--workers``: each count is its own row).
* ``keras (scipy)``: Keras ImageDataGenerator's ``apply_transform`` per sample, as keras-preprocessing does it
  (``scipy.ndimage.affine_transform`` per channel; :mod:`dcvkit.augment.reference`).

Rounds are interleaved and the median images/s is reported; ratios are what to read, the machines are noisy.
Writes ``bench.json`` and ``table.md``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dcvkit.augment import AugmentConfig, Augmenter
from dcvkit.augment.reference import apply_transform, params_of
from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.engine.runtime import resolve_device
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml

PIPELINE = dict(rotation_range=15.0, width_shift_range=0.1, height_shift_range=0.1, zoom_range=0.1,
                horizontal_flip=True, brightness_range=[0.8, 1.2], fill_mode="constant")


@dataclass
class BenchAugmentConfig(RunConfig):
    """Benchmark: image sizes, batches, rounds, DataLoader workers."""

    sizes: str = opt("28,224", "image sizes to measure: 28 is 1-channel (Fashion-MNIST-like), others 3-channel")
    batch_size: int = opt(256, "images per batch")
    images_28: int = opt(2048, "images per round at sizes below 64 (more for steadier timings)")
    images_large: int = opt(1024, "images per round at the larger sizes (several batches, so every "
                                   "DataLoader worker has work)")
    rounds: int = opt(3, "interleaved rounds; the median is reported")
    workers: str = opt("0,2", "DataLoader worker counts for the torchvision v2 pipeline (each is a row)")
    keras: bool = opt(True, "also time Keras' per-sample scipy implementation")
    device: str = opt("cpu", "device of the dcvkit path (cpu, cuda or auto)", ("auto", "cpu", "cuda"))


class _PerSample(Dataset):
    def __init__(self, images: torch.Tensor, transform: Callable):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.images[i])


def torchvision_pipeline() -> Callable:
    """The same random ops in torchvision.transforms.v2, applied to one (C, H, W) uint8 tensor at a time."""
    from torchvision.transforms import v2

    # bilinear like the other two (RandomAffine's default is nearest), fill 0 like fill_mode constant
    return v2.Compose([v2.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1),
                                       interpolation=v2.InterpolationMode.BILINEAR),
                       v2.RandomHorizontalFlip(), v2.ColorJitter(brightness=0.2)])


def _images(size: int, n: int, seed: int) -> torch.Tensor:
    """Random uint8 images (the ops' cost does not depend on the content): 1 channel at small sizes."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1 if size < 64 else 3, size, size), generator=g, dtype=torch.uint8)


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_augment(cfg: BenchAugmentConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    out = new_run_dir(Path(cfg.project) / "bench" / "augment", cfg.name)
    write_yaml(out / "config.yaml", to_dict(cfg))
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    workers = [int(w) for w in cfg.workers.split(",") if w.strip()]
    sizes = [int(s) for s in cfg.sizes.split(",") if s.strip()]
    results: dict[str, Any] = {"pipeline": PIPELINE, "threads": torch.get_num_threads(), "device": str(device),
                               "batch_size": cfg.batch_size, "sizes": {}}
    for size in sizes:
        n = cfg.images_28 if size < 64 else cfg.images_large
        images = _images(size, n, cfg.seed)
        aug = Augmenter(AugmentConfig(**PIPELINE), cfg.seed)
        dev_images = images.to(device)

        def run_dcvkit() -> None:
            for i in range(0, n, cfg.batch_size):
                aug.augment(dev_images[i:i + cfg.batch_size]).images.sum().item()  # .item(): wait for the device

        loaders = {w: DataLoader(_PerSample(images, torchvision_pipeline()), batch_size=cfg.batch_size,
                                 num_workers=w, persistent_workers=w > 0) for w in workers}

        def run_loader(w: int) -> Callable[[], None]:
            return lambda: [None for _ in loaders[w]]

        def run_keras() -> None:
            for i in range(0, n, cfg.batch_size):
                batch = images[i:i + cfg.batch_size]
                p = aug.sample(len(batch), (size, size))
                np.stack([apply_transform(x.numpy().astype(np.float32), params_of(p, j))
                          for j, x in enumerate(batch)])

        contenders: dict[str, Callable[[], None]] = {"dcvkit (batched)": run_dcvkit}
        for w in workers:
            contenders[f"torchvision v2 per sample, {w} workers"] = run_loader(w)
        if cfg.keras:
            contenders["keras semantics per sample (scipy)"] = run_keras
        for fn in contenders.values():  # warm-up: worker start-up, first-call allocations
            fn()
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for r in range(cfg.rounds):
            for name, fn in contenders.items():
                times[name].append(_timed(fn))
            log(f"{size}x{size} round {r + 1}/{cfg.rounds}: " + ", ".join(
                f"{k} {n / v[-1]:,.0f} img/s" for k, v in times.items()))
        ips = {k: n / statistics.median(v) for k, v in times.items()}
        tv = [v for k, v in ips.items() if k.startswith("torchvision")]
        results["sizes"][str(size)] = {
            "images": n, "channels": int(images.shape[1]), "images_per_s": ips,
            # against the fastest worker count: the ratio the issue asks about, at its least flattering
            "speedup_vs_torchvision": ips["dcvkit (batched)"] / max(tv) if tv else None,
            "speedup_vs_keras": ips["dcvkit (batched)"] / ips["keras semantics per sample (scipy)"] if cfg.keras else None}
        del loaders
    results["out_dir"] = str(out)
    write_json(out / "bench.json", results)
    rows = table_rows(results)
    md = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n" + "".join(
        "| " + " | ".join(str(v) for v in r.values()) + " |\n" for r in rows)
    atomic_write(out / "table.md", md.encode())
    return results


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for size, r in results["sizes"].items():
        base = r["images_per_s"]["dcvkit (batched)"]
        for name, ips in r["images_per_s"].items():
            rows.append({"size": f"{r['channels']}x{size}x{size}", "pipeline": name, "images/s": round(ips),
                         "dcvkit speed-up": f"{base / ips:.1f}x"})
    return rows
