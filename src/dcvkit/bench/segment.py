"""``dcv bench segment``: U-Net vs the skip-less convolutional autoencoder vs segmentation_models_pytorch's
U-Net, trained on the same FashionScenes split under the same wall-clock budget.

Every model goes through the same task (``dcvkit.tasks.segment``: loss, optimizer, schedule, data order,
metrics); only the network differs. The budget becomes a number of epochs before training starts (a few
timed steps measure each model's throughput here), so each learning-rate schedule anneals fully within
it. A model spec is a registry name, optionally with an encoder: ``unet``, ``conv_autoencoder``,
``smp_unet:resnet18`` (smp's U-Net on a ResNet-18 encoder, random init), ``unet:resnet18`` (dcvkit's U-Net
on the registry's ResNet-18: the like-for-like twin of the smp row).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from dcvkit.bench.architectures import flops_per_image, plan_budget, training_throughput
from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.engine import resolve_device
from dcvkit.errors import ConfigError
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.models import create_model
from dcvkit.viz.report import markdown_table


@dataclass
class BenchSegmentConfig(RunConfig):
    """Benchmark: which models, how long each trains, on which scenes."""

    models: str = opt("unet,conv_autoencoder,smp_unet:resnet18",
                      "comma-separated model specs: a segment model name, or name:encoder")
    budget_minutes: float = opt(12.0, "training wall-clock budget per model (sized for 2 CPU cores: under ~10 "
                                      "minutes the U-Net has not yet learnt the classes, see docs/results.md)")
    scenes: int = opt(4000, "FashionScenes training scenes (10% of them validate)")
    test_scenes: int = opt(1000, "FashionScenes test scenes")
    img_size: int = opt(128, "scene size")
    batch_size: int = opt(16, "images per step")
    data_dir: str | None = opt(None, "folder holding Fashion-MNIST's files")
    device: str = opt("auto", "auto, cpu or cuda", ("auto", "cpu", "cuda"))
    calibration_steps: int = opt(4, "timed steps that measure each model's throughput before it trains")
    max_epochs: int = opt(40, "at most this many epochs, however fast the model")
    progress: bool = opt(True, "show progress bars and one line per epoch")


def parse_spec(spec: str) -> tuple[str, str | None]:
    name, _, encoder = spec.partition(":")
    return name.strip(), (encoder.strip() or None)


def bench_segment(cfg: BenchSegmentConfig, out_dir: Path | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train each model spec within the budget on one FashionScenes split; returns (and writes as
    ``bench.json``) one row per model."""
    from dcvkit.tasks.segment import SegmentConfig, load_splits, train

    specs = [parse_spec(s) for s in cfg.models.split(",") if s.strip()]
    if not specs:
        raise ConfigError("--models: give at least one model")
    device = resolve_device(cfg.device)
    base = SegmentConfig(data="scenes", data_dir=cfg.data_dir, scenes=cfg.scenes, test_scenes=cfg.test_scenes,
                         img_size=cfg.img_size, seed=cfg.seed, batch_size=cfg.batch_size, device=cfg.device,
                         tensorboard=False, progress=cfg.progress)
    t0 = time.perf_counter()
    splits = load_splits(base)
    log(f"{splits.summary()} (generated in {time.perf_counter() - t0:.1f}s)")
    shape = (splits.channels, *splits.img_size)
    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "segment", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    rows: list[dict[str, Any]] = []
    for name, encoder in specs:
        label = name if encoder is None else f"{name}:{encoder}"
        kw = {"encoder": encoder} if encoder else {}
        torch.manual_seed(cfg.seed)
        model = create_model(name, num_classes=splits.num_classes, in_chans=splits.channels,
                             img_size=splits.img_size, **kw)
        params = sum(p.numel() for p in model.parameters())
        flops = flops_per_image(model.to(device), shape)
        ips = training_throughput(model, shape, splits.num_classes, cfg.batch_size, cfg.calibration_steps, device,
                                  warmup=2, dense=True)
        n_val = len(splits.val or [])
        n_all = len(splits.train) + n_val
        epochs, limit = plan_budget(cfg.budget_minutes * 60, ips, n_all, n_val / n_all)
        epochs = min(epochs, cfg.max_epochs)
        train_splits = splits
        if limit is not None:  # too slow for one epoch: one epoch over the first `limit` scenes
            subset = splits.train.subset(torch.arange(min(limit, len(splits.train))))
            train_splits = dataclasses.replace(splits, train=subset)
        seen = f"{epochs} epochs" if limit is None else f"{len(train_splits.train):,} scenes, 1 epoch"
        log(f"{label}: {params / 1e6:.2f}M params, {flops / 1e9:.2f} GFLOPs/image, ~{ips:.1f} images/s -> {seen}")
        tcfg = SegmentConfig(**{**to_dict(base), "model": name, "encoder": encoder, "epochs": epochs})
        t1 = time.perf_counter()
        result = train(tcfg, run_dir=out_dir / label.replace(":", "_"), splits=train_splits)
        wall = time.perf_counter() - t1
        hist = result.fit.history
        test = result.test or {}
        per_class = {c["class"]: c["dice"] for c in test.get("per_class", [])}
        rows.append({
            "model": label, "name": name, "params": params, "gflops": flops / 1e9,
            "train_images_per_s": sorted(h["images_per_s"] for h in hist)[len(hist) // 2],
            "predict_images_per_s": test.get("images_per_s", math.nan),
            "epochs": epochs, "train_s": round(result.fit.seconds, 1), "wall_s": round(wall, 1),
            "mean_dice": test.get("mean_dice", math.nan), "mean_iou": test.get("mean_iou", math.nan),
            "pixel_accuracy": test.get("pixel_accuracy", math.nan), "per_class_dice": per_class,
        })
        log(f"{label}: test mean Dice {rows[-1]['mean_dice']:.4f}, mean IoU {rows[-1]['mean_iou']:.4f} in {wall:.0f}s")
        del model
    results = {"config": to_dict(cfg), "device": str(device), "threads": torch.get_num_threads(),
               "data": splits.summary(), "rows": rows, "verdicts": verdicts(rows)}
    write_json(out_dir / "bench.json", results)
    atomic_write(out_dir / "table.md", markdown_table(table_rows(results)).encode())
    plot_segment_bench(rows, out_dir / "dice.png")
    results["out_dir"] = str(out_dir)
    return results


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """The comparisons the course makes, computed from the rows that are present."""
    by = {r["model"]: r for r in rows}
    out = []
    if "unet" in by and "conv_autoencoder" in by:
        d = by["unet"]["mean_dice"] - by["conv_autoencoder"]["mean_dice"]
        out.append(f"skips: unet {'beats' if d > 0 else 'does not beat'} the skip-less conv_autoencoder by "
                   f"{d:+.4f} mean Dice")
    smp = [r for r in rows if r["name"] == "smp_unet"]  # the reference implementation, with any encoder
    if "unet" in by and smp:
        d = by["unet"]["mean_dice"] - smp[0]["mean_dice"]
        out.append(f"unet {'>=' if d >= 0 else '<'} {smp[0]['model']} under the same budget ({d:+.4f} mean Dice)")
    return out


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"model": r["model"], "params (M)": f"{r['params'] / 1e6:.2f}", "GFLOPs/img": f"{r['gflops']:.2f}",
             "train img/s": f"{r['train_images_per_s']:.1f}", "predict img/s": f"{r['predict_images_per_s']:.1f}",
             "epochs": r["epochs"], "mean Dice": f"{r['mean_dice']:.4f}", "mean IoU": f"{r['mean_iou']:.4f}",
             "pixel acc": f"{r['pixel_accuracy']:.4f}"} for r in results["rows"]]


def plot_segment_bench(rows: list[dict[str, Any]], path: Path) -> None:
    """Test mean Dice per model (bars) and per class (dots) under the same budget."""
    from dcvkit.viz.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(1.5 + 1.4 * len(rows), 3.6))
    xs = range(len(rows))
    ax.bar(xs, [r["mean_dice"] for r in rows], color="#4c72b0", label="mean Dice (foreground)")
    for x, r in zip(xs, rows):
        vals = [v for v in r["per_class_dice"].values() if v is not None][1:]
        ax.scatter([x] * len(vals), vals, s=10, color="#c44e52", zorder=3, label="per class" if x == 0 else None)
    ax.set_xticks(list(xs), [f"{r['model']}\n{r['train_images_per_s']:.0f} img/s, {r['epochs']} ep" for r in rows],
                  fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test Dice")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)


__all__ = ["BenchSegmentConfig", "bench_segment", "table_rows", "verdicts"]
