"""``dcv bench streaming``: training throughput from memory vs streamed from files, on the same images.

A dataset that fits in memory is loaded both ways (:class:`~dcvkit.data.detection.DetectionTensors` /
:class:`~dcvkit.data.detection.DetectionFiles` for detection; :class:`~dcvkit.data.masks.MaskTensors` /
:class:`~dcvkit.data.masks.MaskFiles` for segmentation). Each round trains one epoch over it from one
source, then the other (the order alternating, so the machine's drift falls on both); images/s per round,
medians, and the ratio streamed / in memory. The streamed epoch decodes its batches in ``workers`` threads
while the network trains, as every epoch of a real streamed run does.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.errors import ConfigError
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.viz.report import markdown_table


@dataclass
class BenchStreamingConfig(RunConfig):
    """Benchmark: in-memory vs streamed training epochs on one dataset."""

    task: str = opt("detect", "which data path: detect (yolo_n on boxes) or segment (unet on masks)",
                    ("detect", "segment"))
    data: str | None = opt(None, "a detection dataset (COCO/YOLO/VOC) or a segmentation folder (images/ + "
                                 "masks/); default: --images photo scenes written to a temporary folder")
    images: int = opt(256, "photo scenes generated when --data is not given (640x480 JPEGs)")
    img_size: int | None = opt(None, "letterbox to this square size (default: the data's own, e.g. 480x640)")
    batch_size: int = opt(8, "images per training step")
    rounds: int = opt(3, "epochs from each source, alternating")
    workers: int = opt(2, "threads decoding the streamed batches")
    crop: int = opt(256, "segment: random crop side")
    data_dir: str | None = opt(None, "folder holding Fashion-MNIST's files (the generated scenes' items)")


def _write_scenes(cfg: BenchStreamingConfig, root: Path) -> Path:
    from dcvkit.data import named
    from dcvkit.data.scenes import write_photo_scenes

    items, _ = named.load("fashion-mnist", cfg.data_dir)
    fmt = "yolo" if cfg.task == "detect" else "masks"
    out, _ = write_photo_scenes(items, cfg.images, root / fmt, fmt, seed=cfg.seed)
    return out / "data.yaml" if fmt == "yolo" else out


def _sources(cfg: BenchStreamingConfig, data: str) -> tuple[Any, Any, int, int]:
    """(in-memory data, streamed data, input channels, classes) of the same images."""
    if cfg.task == "detect":
        from dcvkit.data.detection import detection_files, read_annotations, to_tensors

        files = detection_files(read_annotations(data), cfg.img_size)
        return to_tensors(files), files, files.channels, len(files.classes)
    from dcvkit.data.masks import hold_masks, mask_files

    size = (cfg.img_size, cfg.img_size) if cfg.img_size else None
    files = mask_files(Path(data), img_size=size)
    return hold_masks(files, stream=False), files, files.channels, len(files.classes)


def bench_streaming(cfg: BenchStreamingConfig, out_dir: Path | None = None,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    from dcvkit.models import create_model
    from dcvkit.tasks.segment import random_crops

    if cfg.rounds < 1 or cfg.batch_size < 1:
        raise ConfigError("--rounds and --batch-size must be at least 1")
    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "streaming", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    with tempfile.TemporaryDirectory() as tmp:
        data = cfg.data or str(_write_scenes(cfg, Path(tmp)))
        memory, files, chans, classes = _sources(cfg, data)
        log(f"{len(files)} images at {files.img_size[0]}x{files.img_size[1]} ({cfg.task}), batch {cfg.batch_size}, "
            f"{cfg.workers} workers")
        torch.manual_seed(cfg.seed)
        if cfg.task == "detect":
            model = create_model("yolo_n", num_classes=classes, in_chans=chans, img_size=list(files.img_size))
        else:
            model = create_model("unet", num_classes=classes, in_chans=chans, img_size=cfg.crop)
        model = model.to(memory_format=torch.channels_last).train()
        opt_ = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        gen = torch.Generator().manual_seed(cfg.seed)

        def step(batch) -> int:
            if cfg.task == "detect":
                images, boxes, labels, _ = batch
                loss = model.loss(images.float().div(255).contiguous(memory_format=torch.channels_last), boxes,
                                  labels)["loss"]
            else:
                images, masks = random_crops(*batch, cfg.crop, gen)
                logits = model(images.float().div(255).contiguous(memory_format=torch.channels_last))
                loss = torch.nn.functional.cross_entropy(logits, masks.long(), ignore_index=255)
            opt_.zero_grad(set_to_none=True)
            loss.backward()
            opt_.step()
            return len(images)

        rates: dict[str, list[float]] = {"in memory": [], "streamed": []}
        sources = {"in memory": memory, "streamed": files}
        for r in range(cfg.rounds + 1):  # round 0 warms both up and is not counted
            order = ["in memory", "streamed"] if r % 2 else ["streamed", "in memory"]
            for name in order:
                loader = sources[name].loader(cfg.batch_size, shuffle=True, seed=cfg.seed, workers=cfg.workers)
                loader.set_epoch(r)
                t0, n = time.perf_counter(), 0
                for batch in loader:
                    n += step(batch)
                if r:
                    rates[name].append(n / (time.perf_counter() - t0))
            if r:
                log(f"round {r}: in memory {rates['in memory'][-1]:.1f} img/s, "
                    f"streamed {rates['streamed'][-1]:.1f} img/s")
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = med["streamed"] / med["in memory"]
    rows = [{"source": k, "images/s (median)": round(v, 1), "rounds": [round(x, 1) for x in rates[k]],
             "ratio vs in memory": round(v / med["in memory"], 3)} for k, v in med.items()]
    result = {"config": to_dict(cfg), "task": cfg.task, "images": len(files), "img_size": list(files.img_size),
              "threads": torch.get_num_threads(), "rows": rows, "streamed_over_memory": ratio,
              "verdicts": [f"streamed training runs at {ratio:.2f}x the in-memory images/s ({med['streamed']:.1f} vs "
                           f"{med['in memory']:.1f}; target >= 0.8x)"], "out_dir": str(out_dir)}
    write_json(out_dir / "bench.json", result)
    atomic_write(out_dir / "table.md", markdown_table(table_rows(result)))
    return result


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"source": r["source"], "images/s": f"{r['images/s (median)']:.1f}",
             "rounds": ", ".join(f"{x:.1f}" for x in r["rounds"]), "ratio": f"{r['ratio vs in memory']:.2f}x"}
            for r in result["rows"]]


__all__ = ["BenchStreamingConfig", "bench_streaming", "table_rows"]
